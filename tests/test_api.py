"""API versions, paths and the checks on object types and hosts (pure functions, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_hubspot_assoc import api
from airflow_hubspot_assoc.exceptions import HubSpotConfigError


@pytest.mark.parametrize(
    ("given_version", "expected"),
    [
        (None, "v4"),
        ("", "v4"),
        ("  ", "v4"),
        ("v4", "v4"),
        ("V4", "v4"),
        ("2026-03", "2026-03"),
        (" 2026-09 ", "2026-09"),
    ],
)
def test_api_versions_accepted(given_version, expected):
    assert api.validate_api_version(given_version) == expected


@pytest.mark.parametrize("bad", ["v3", "2026-01", "2026-3", "26-03", "2026-03-01", "latest", "v4/../x", 4])
def test_api_versions_rejected_with_the_value_quoted(bad):
    with pytest.raises(HubSpotConfigError, match="Unsupported HubSpot API version") as err:
        api.validate_api_version(bad)
    assert repr(bad) in str(err.value)


def test_paths_v4():
    paths = api.association_paths("v4", "contacts", "companies")
    assert paths.batch_create == "/crm/v4/associations/contacts/companies/batch/create"
    assert paths.batch_associate_default == "/crm/v4/associations/contacts/companies/batch/associate/default"
    assert paths.batch_read == "/crm/v4/associations/contacts/companies/batch/read"
    assert paths.labels == "/crm/associations/v4/contacts/companies/labels"


@pytest.mark.parametrize("version", ["2026-03", "2026-09", "2027-03"])
def test_paths_dated(version):
    paths = api.association_paths(version, "0-1", "2-1234567")
    base = f"/crm/associations/{version}/0-1/2-1234567"
    assert paths.batch_create == f"{base}/batch/create"
    assert paths.batch_associate_default == f"{base}/batch/associate/default"
    assert paths.batch_read == f"{base}/batch/read"
    assert paths.labels == f"{base}/labels"


@pytest.mark.parametrize("good", ["contacts", "line_items", "p_custom", "0-1", "2-1234567", "a" * 100])
def test_object_types_accepted(good):
    assert api.validate_object_type(good) == good


@pytest.mark.parametrize(
    "bad",
    ["", "contacts/companies", "..", "../etc", "contacts?x=1", "a" * 101, "con tacts", "c%2F", ".", 7, None],
)
def test_object_types_rejected_with_the_value_quoted(bad):
    with pytest.raises(HubSpotConfigError, match="Invalid HubSpot object type") as err:
        api.validate_object_type(bad)
    assert repr(bad)[:50] in str(err.value)


def test_a_rejected_object_type_never_reaches_a_path():
    with pytest.raises(HubSpotConfigError):
        api.association_paths("v4", "contacts", "../../oauth/v1/token")


@given(st.text(max_size=120))
def test_every_accepted_object_type_is_a_single_safe_path_segment(value):
    try:
        accepted = api.validate_object_type(value)
    except HubSpotConfigError:
        return
    assert 1 <= len(accepted) <= 100
    assert "/" not in accepted and "?" not in accepted and "#" not in accepted and "%" not in accepted
    assert set(accepted) != {"."}


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "https://api.hubapi.com"),
        ("", None, "https://api.hubapi.com"),
        ("api.hubapi.com", None, "https://api.hubapi.com"),
        ("https://api.hubapi.com/", None, "https://api.hubapi.com"),
        ("https://eu1.hubapi.com", 8443, "https://eu1.hubapi.com:8443"),
        ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080"),
        ("http://127.1.2.3", 9000, "http://127.1.2.3:9000"),
        ("http://localhost:1234", None, "http://localhost:1234"),
        ("http://[::1]:1234", None, "http://[::1]:1234"),
        ("https://proxy.example.com/hubspot/", None, "https://proxy.example.com/hubspot"),
    ],
)
def test_hosts_accepted(host, port, expected):
    assert api.normalise_base_url(host, port) == expected


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("http://api.hubapi.com", "plain http"),
        ("http://10.0.0.5:8080", "plain http"),
        ("http://128.0.0.1", "plain http"),
        ("http://localhost.evil.com", "plain http"),
        ("ftp://api.hubapi.com", "scheme must be https"),
        ("https://user:pw@api.hubapi.com", "credentials in the URL"),
        ("https://api.hubapi.com/?x=1", "no query"),
        ("https://", "no host name"),
    ],
)
def test_hosts_refused(host, reason):
    with pytest.raises(HubSpotConfigError, match=reason) as err:
        api.normalise_base_url(host)
    assert "pw" not in str(err.value)


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "127.255.0.9", "::1", "[::1]", "LOCALHOST"])
def test_loopback_names(name):
    assert api.is_loopback_host(name)


@pytest.mark.parametrize("name", ["api.hubapi.com", "10.0.0.1", "::2", "0.0.0.0", "localhost.example"])
def test_not_loopback_names(name):
    assert not api.is_loopback_host(name)
