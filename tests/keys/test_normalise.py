"""Key normalisation as HubSpot compares, and the checks of id property parameters."""

from __future__ import annotations

import pytest

from airflow_hubspot_assoc.constants import MAX_PROPERTY_VALUE_CHARS
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.keys.normalise import compare_form, fold_domain, key_property
from airflow_hubspot_assoc.pairs import PairReader
from airflow_hubspot_assoc.pairs.ids import InvalidValueError, normalise_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme.com", "acme.com"),
        ("  ACME.com ", "acme.com"),
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("http://acme.com:8080", "acme.com"),
        ("www.acme.com.", "acme.com"),
        ("shop.acme.co.uk/", "shop.acme.co.uk"),
    ],
)
def test_domains_fold_to_the_bare_host(raw, expected):
    assert fold_domain(raw) == expected
    assert compare_form("domain", raw) == expected


def test_emails_fold_and_other_properties_stay_exact():
    assert compare_form("email", "  Ann@Example.COM ") == "ann@example.com"
    assert compare_form("external_id", "  C-007 ") == "C-007"
    assert compare_form("external_id", "c-007") != compare_form("external_id", "C-007")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "the key is empty"),
        ("   ", "only whitespace"),
        (None, "missing"),
        (7, "int, not a key"),
        (1.5, "float, not a key"),
        ("x" * (MAX_PROPERTY_VALUE_CHARS + 1), "characters long"),
    ],
)
def test_bad_keys_say_why(value, reason):
    with pytest.raises(InvalidValueError, match=reason):
        normalise_key(value)


def test_keys_are_trimmed_text():
    assert normalise_key("  007 ") == "007"


def test_id_property_parameters_are_checked_before_any_request():
    assert key_property("from_id_property", "from", "contacts", None) is None
    assert key_property("from_id_property", "from", "contacts", "hs_object_id") is None
    email = key_property("from_id_property", "from", "contacts", "email")
    assert email is not None and email.trusted and not email.search
    domain = key_property("to_id_property", "to", "0-2", "domain")
    assert domain is not None and domain.search
    custom = key_property("to_id_property", "to", "companies", "external_id")
    assert custom is not None and not custom.trusted
    with pytest.raises(HubSpotConfigError, match=r"to_id_property='domain' is only a key of companies"):
        key_property("to_id_property", "to", "deals", "domain")
    with pytest.raises(HubSpotConfigError, match="from_id_property='Bad Name'"):
        key_property("from_id_property", "from", "contacts", "Bad Name")


def test_readers_keep_key_sides_as_text_and_name_line_and_field(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("email,company\n Ann@X.com ,007\n,12\n  ,13\nbob@x.com,14\n")
    rows = list(
        PairReader.from_path(str(path), from_id_field="email", to_id_field="company", keys=(True, False))
    )
    assert (rows[0].from_id, rows[0].to_id, rows[0].line) == ("Ann@X.com", "7", 2)
    assert (rows[1].line, rows[1].field, rows[1].reason) == (3, "email", "the key is empty")
    assert (rows[2].line, rows[2].field, rows[2].reason) == (4, "email", "the key is only whitespace")
    assert (rows[3].from_id, rows[3].to_id) == ("bob@x.com", "14")
    items = [{"from_id": "a@x.com", "to_id": "007"}, {"from_id": "b@x.com", "to_id": 7}]
    listed = list(PairReader.from_pairs(items, keys=(True, True)))
    assert (listed[0].from_id, listed[0].to_id) == ("a@x.com", "007")
    assert listed[1].field == "to_id" and "int, not a key" in listed[1].reason
