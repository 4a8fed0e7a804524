from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs import InvalidRow, Pair
from airflow_hubspot_assoc.pairs.rows import ItemConverter, build_pair
from tests.helpers import assert_well_formed


def convert(items, from_field="from_id", to_field="to_id"):
    converter = ItemConverter("src", from_field, to_field)
    return [converter(item, number) for number, item in enumerate(items, start=1)]


def test_build_pair_normalises_and_keeps_overrides():
    pair = build_pair("007", 8, 3, "src", "from_id", "to_id", "279", "user_defined", " Manager ")
    assert pair == Pair("7", "8", 3, "src", 279, "USER_DEFINED", "Manager", None)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (("x", "1", None, None, None), "from_id"),
        (("1", "", None, None, None), "to_id"),
        (("1", "2", "abc", None, None), "association_type_id"),
        (("1", "2", "1", "NOPE", None), "association_category"),
        (("1", "2", None, None, 7), "association_label"),
    ],
)
def test_build_pair_names_the_bad_field_and_keeps_raw_ids(row, field):
    result = build_pair(row[0], row[1], 4, "src", "from_id", "to_id", *row[2:])
    assert isinstance(result, InvalidRow)
    assert (result.source, result.line, result.field) == ("src", 4, field)
    assert (result.from_id, result.to_id) == (row[0], row[1])


def test_list_items():
    rows = convert([[1, 2], ("03", "4"), [5], [6, 7, 8], [True, 1], [1.5, 2]])
    assert rows[:2] == [Pair("1", "2", 1, "src"), Pair("3", "4", 2, "src")]
    assert [(r.line, r.field) for r in rows[2:]] == [(3, None), (4, None), (5, "from_id"), (6, "from_id")]
    assert "got a list of 1 values" in rows[2].reason


def test_dict_items_with_custom_fields_and_overrides():
    rows = convert(
        [
            {"contact": 1, "company": "2"},
            {
                "contact": 3,
                "company": 4,
                "association_type_id": 279,
                "association_category": "HUBSPOT_DEFINED",
            },
            {"contact": 5, "company": 6, "association_label": "Billing", "extra": "ignored"},
            {"contact": 7},
        ],
        "contact",
        "company",
    )
    assert rows[0] == Pair("1", "2", 1, "src")
    assert rows[1] == Pair("3", "4", 2, "src", 279, "HUBSPOT_DEFINED")
    assert rows[2] == Pair("5", "6", 3, "src", label="Billing")
    assert isinstance(rows[3], InvalidRow) and rows[3].field == "company" and "missing" in rows[3].reason


def test_hubspot_input_items():
    rows = convert(
        [
            {
                "from": {"id": "1"},
                "to": {"id": 2},
                "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 9}],
            },
            {"from": {"id": "3"}, "to": {"id": "4"}},
            {"from": {"id": "5"}, "to": {"id": "6"}, "types": []},
            {"from": 7, "to": {"id": "8"}},
            {"from": {"id": "x"}, "to": {"id": "8"}},
            {"from": {"id": "9"}, "to": {"id": "8"}, "types": [{"associationCategory": "USER_DEFINED"}]},
            {
                "from": {"id": "9"},
                "to": {"id": "8"},
                "types": [{"associationCategory": "X", "associationTypeId": 1}],
            },
            {"from": {"id": "9"}, "to": {"id": "8"}, "types": "HUBSPOT_DEFINED"},
            {"to": {"id": "8"}},
        ]
    )
    assert rows[0] == Pair("1", "2", 1, "src", types=(("USER_DEFINED", 9),))
    assert rows[1] == Pair("3", "4", 2, "src")
    assert rows[2] == Pair("5", "6", 3, "src")
    assert [(r.line, r.field) for r in rows[3:]] == [
        (4, "from"),
        (5, "from.id"),
        (6, "types[0].associationTypeId"),
        (7, "types[0].associationCategory"),
        (8, "types"),
        (9, "from"),
    ]
    assert rows[4].from_id == "x" and rows[4].to_id == "8"


def test_id_fields_named_from_and_to_still_tell_the_shapes_apart():
    assert convert([{"from": "1", "to": "2"}], "from", "to") == [Pair("1", "2", 1, "src")]
    assert convert([{"from": {"id": 1}, "to": {"id": 2}}], "from", "to") == [Pair("1", "2", 1, "src")]


@pytest.mark.parametrize(
    "items",
    [
        [[1, 2], {"from_id": 1, "to_id": 2}],
        [{"from_id": 1, "to_id": 2}, {"from": {"id": 1}, "to": {"id": 2}}],
        [{"from": {"id": 1}, "to": {"id": 2}}, [1, 2]],
    ],
)
def test_mixed_shapes_are_an_input_error(items):
    with pytest.raises(PairInputError) as excinfo:
        convert(items)
    assert excinfo.value.line == 2 and "mixed item shapes" in str(excinfo.value)


def test_items_of_no_shape_are_invalid_rows_and_do_not_fix_the_shape():
    rows = convert(["1,2", 5, None, [1, 2]])
    assert [type(r) for r in rows] == [InvalidRow, InvalidRow, InvalidRow, Pair]
    assert "expected an object or a [from_id, to_id] list" in rows[0].reason


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "from_id",
                    "to_id",
                    "from",
                    "to",
                    "id",
                    "types",
                    "association_type_id",
                    "association_category",
                    "association_label",
                    "associationCategory",
                    "associationTypeId",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_json, max_size=8))
def test_fuzz_items_only_yield_pairs_invalid_rows_or_input_errors(items):
    try:
        rows = convert(items)
    except PairInputError as err:
        assert "mixed item shapes" in str(err)
        return
    assert [row.line for row in rows] == list(range(1, len(items) + 1))
    for row in rows:
        assert_well_formed(row, "src")
