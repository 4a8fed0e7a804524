from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_hubspot_assoc.pairs.ids import (
    MAX_ID,
    InvalidValueError,
    is_canonical_id,
    normalise_category,
    normalise_id,
    normalise_label,
    normalise_type_id,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", "1"),
        ("007", "7"),
        (" 42\t", "42"),
        (42, "42"),
        (str(MAX_ID), str(MAX_ID)),
        ("000" + str(MAX_ID), str(MAX_ID)),
        (MAX_ID, str(MAX_ID)),
    ],
)
def test_valid_ids_are_normalised(value, expected):
    assert normalise_id(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "missing"),
        ("0", "zero"),
        ("000", "zero"),
        (0, "not positive"),
        (-5, "not positive"),
        ("-5", "negative"),
        ("+5", "sign"),
        ("12a", "not a record id"),
        ("1.0", "not a record id"),
        ("1e3", "not a record id"),
        ("١٢", "not a record id"),  # Arabic-Indic digits pass str.isdigit() but are not ids
        ("²", "not a record id"),
        (str(MAX_ID + 1), "larger than the largest"),
        (MAX_ID + 1, "larger than the largest"),
        ("9" * 40, "larger than the largest"),
        ("1" * 65, "too long"),
        (True, "boolean"),
        (1.0, "floating-point"),
        (float("nan"), "floating-point"),
        ([1], "list"),
        ({"id": 1}, "dict"),
    ],
)
def test_invalid_ids_say_why(value, reason):
    with pytest.raises(InvalidValueError) as excinfo:
        normalise_id(value)
    assert reason in excinfo.value.reason


def test_a_huge_bad_value_is_shortened_in_the_reason():
    with pytest.raises(InvalidValueError) as excinfo:
        normalise_id("x" * 60)
    assert len(excinfo.value.reason) < 100


@given(st.integers(min_value=1, max_value=MAX_ID), st.integers(min_value=0, max_value=20))
def test_any_id_in_range_round_trips_with_padding(number, zeros):
    assert normalise_id("0" * zeros + str(number)) == str(number)
    assert normalise_id(number) == str(number)


@given(st.text(max_size=30))
def test_any_text_is_either_a_canonical_id_or_refused(text):
    try:
        result = normalise_id(text)
    except InvalidValueError as err:
        assert err.reason
    else:
        assert 1 <= int(result) <= MAX_ID
        assert is_canonical_id(result) or len(result) == 19


@given(st.text(max_size=25))
def test_the_fast_test_never_accepts_what_the_full_check_refuses(text):
    if is_canonical_id(text):
        assert normalise_id(text) == text


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("", None), (" 279 ", 279), (1, 1), (2**31 - 1, 2**31 - 1)]
)
def test_type_ids(value, expected):
    assert normalise_type_id(value) == expected


@pytest.mark.parametrize("value", ["0", 0, -1, 2**31, "x", "1.5", 1.0, True, [1]])
def test_bad_type_ids(value):
    with pytest.raises(InvalidValueError):
        normalise_type_id(value)


def test_categories_are_upper_cased_and_checked():
    assert normalise_category(" user_defined ") == "USER_DEFINED"
    assert normalise_category("") is None
    assert normalise_category(None) is None
    with pytest.raises(InvalidValueError, match="HUBSPOT_DEFINED"):
        normalise_category("CUSTOM")
    with pytest.raises(InvalidValueError):
        normalise_category(3)


def test_labels_are_stripped_and_empty_means_none():
    assert normalise_label(" Billing contact ") == "Billing contact"
    assert normalise_label("  ") is None
    assert normalise_label(None) is None
    with pytest.raises(InvalidValueError):
        normalise_label(5)
