"""Asset URIs for HubSpot associations: one spelling per object pair, accepted and normalised by Airflow."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from airflow.sdk import Asset

from airflow_hubspot_assoc import assets
from airflow_hubspot_assoc.assets import (
    associations_uri,
    hubspot_associations_asset,
    normalize_uri,
    parse_uri,
)
from airflow_hubspot_assoc.get_provider_info import get_provider_info
from airflow_hubspot_assoc.record import BatchRecord


def test_the_helper_builds_a_stable_uri():
    asset = hubspot_associations_asset("contacts", "companies", portal="12345678")
    assert asset.uri == "hubspot://12345678/associations/contacts/companies"
    assert asset.name == asset.uri
    assert hubspot_associations_asset("contact", "0-2", portal=12345678) == asset
    assert hubspot_associations_asset("contacts", "companies").uri == (
        "hubspot://api.hubapi.com/associations/contacts/companies"
    )
    named = hubspot_associations_asset("deals", "2-123", name="Deal cars", extra={"team": "sales"})
    assert (named.uri, named.name, named.extra) == (
        "hubspot://api.hubapi.com/associations/deals/2-123",
        "Deal cars",
        {"team": "sales"},
    )


def test_the_scheme_is_registered_with_airflow():
    (entry,) = get_provider_info()["asset-uris"]
    assert entry == {
        "schemes": ["hubspot"],
        "handler": "airflow_hubspot_assoc.assets.normalize_uri",
        "factory": "airflow_hubspot_assoc.assets.create_asset",
        "to_openlineage_converter": "airflow_hubspot_assoc.assets.convert_asset_to_openlineage",
    }
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManagerTaskRuntime()
    assert manager.asset_uri_handlers["hubspot"] is normalize_uri
    assert manager.asset_factories["hubspot"] is assets.create_asset


@pytest.mark.parametrize(
    "written",
    [
        "hubspot://12345678/associations/contacts/companies",
        "HUBSPOT://12345678/associations/Contacts/Companies/",
        "hubspot://12345678/associations/contact/company",
        "hubspot://12345678/associations/0-1/0-2#fragment",
    ],
)
def test_airflow_normalises_every_spelling_of_a_pair_through_the_handler(written):
    assert Asset(written).uri == "hubspot://12345678/associations/contacts/companies"


def test_hosts_are_lower_cased_and_may_carry_a_port():
    assert Asset("hubspot://API.HubAPI.com/associations/deals/tickets").uri == (
        "hubspot://api.hubapi.com/associations/deals/tickets"
    )
    assert parse_uri("hubspot://127.0.0.1:8099/associations/deals/tickets") == (
        "127.0.0.1:8099",
        "deals",
        "tickets",
    )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("hubspot://12345678/contacts", "looks like hubspot://<portal id>/associations/<from>/<to>"),
        ("hubspot://12345678/associations/contacts", "looks like"),
        ("hubspot://12345678/associations/a/b/c", "looks like"),
        ("hubspot://12345678/associations/contacts/companies?x=1", "takes no query"),
        ("hubspot://user@12345678/associations/contacts/companies", "needs a portal id or API host"),
        ("hubspot://under_score/associations/contacts/companies", "authority"),
        ("hubspot://12345678/associations/con%20tacts/companies", "Invalid HubSpot object type"),
    ],
)
def test_malformed_uris_fail_at_parse_time_with_a_reason(uri, message):
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        Asset(uri)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("contacts", "companies", "hub-1"), "portal id is a number"),
        (("contacts/..", "companies"), "Invalid HubSpot object type"),
        (("", "companies"), "Invalid HubSpot object type"),
    ],
)
def test_the_helper_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        hubspot_associations_asset(*args)


def test_parse_uri_ignores_other_schemes_and_shapes():
    assert parse_uri("s3://bucket/key") is None
    assert parse_uri("hubspot://1/contacts") is None
    assert parse_uri(associations_uri("0-3", "line_item", 42)) == ("42", "deals", "line_items")


def test_normalize_uri_is_idempotent():
    parts = urlsplit("hubspot://12345678/associations/contact/0-2")
    once = normalize_uri(parts)
    assert normalize_uri(once) == once


def test_the_asset_names_the_same_openlineage_dataset_as_the_operator_output():
    from airflow_hubspot_assoc.datasets import LineageDataset, associations_dataset

    asset = hubspot_associations_asset("contacts", "companies", portal="12345678")
    expected = LineageDataset("hubspot://12345678", "associations/contacts/companies")
    assert assets.asset_dataset(asset.uri) == expected
    assert associations_dataset("contact", "0-2", portal_id="12345678", base_url=None) == expected
    no_portal = associations_dataset(
        "contacts", "companies", portal_id=None, base_url="https://api.hubapi.com"
    )
    assert assets.asset_dataset(hubspot_associations_asset("contacts", "companies").uri) == no_portal


class _Accessor:
    def __init__(self) -> None:
        self.extra: dict = {}


class _OutletEvents(dict):
    def __missing__(self, key):
        self[key] = _Accessor()
        return self[key]


def test_outlet_events_get_the_counts_of_a_matching_pair_only(caplog):
    matching = hubspot_associations_asset("contact", "companies")
    other = hubspot_associations_asset("deals", "companies")
    unrelated = Asset("s3://bucket/export")
    events = _OutletEvents()
    counts = {"status": "COMPLETE", "total": 3, "created": 2, "failed": 1, "invalid": 0, "dryRun": False}
    record = BatchRecord.from_xcom({**counts, "fromObjectType": "contacts", "toObjectType": "0-2"})
    matched = assets.describe_outlet_events([matching, other, unrelated], {"outlet_events": events}, record)
    assert matched == 1
    assert events[matching].extra == {
        **counts,
        "fromObjectType": "contacts",
        "toObjectType": "companies",
    }
    assert other not in events and unrelated not in events
    assert "names the deals -> companies associations" in caplog.text
    assert assets.describe_outlet_events([matching], {}, record) == 0
