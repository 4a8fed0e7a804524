"""Records with properties, the properties API and object batch read, over real HTTP."""

from __future__ import annotations

import pytest

from airflow_hubspot_assoc.testing import HubSpotStandIn, StandInConfig
from airflow_hubspot_assoc.testing.config import GeneratedRecords, PropertyConfig
from tests.testing.crm_support import read_body, request
from tests.testing.support import call, create_inputs

VERSIONS = ("v4", "2026-03", "2026-09")
PARTIAL = {"v4": 207, "2026-03": 207, "2026-09": 200}

CONFIG = StandInConfig(
    rate_limit=None,
    records={
        "contacts": (
            {"id": "1", "properties": {"email": "Ada@Example.com", "firstname": "Ada"}},
            {"id": "2", "properties": {"email": "bob@example.com"}},
        ),
        "companies": ({"id": "500", "properties": {"domain": "shared.com", "external_id": "ERP-500"}},),
    },
    generated_records=(
        GeneratedRecords("companies", 20, {"domain": "c{n}.com", "external_id": "ERP-{id}"}, first_id=100),
    ),
    properties=(PropertyConfig("companies", "external_id", label="ERP id", has_unique_value=True),),
)


@pytest.fixture(scope="module")
def hs():
    with HubSpotStandIn(CONFIG) as standin:
        yield standin
    assert standin.stats.response_violations == 0, standin.stats.response_violation_messages


# -- records seeded from the config and the Python API -------------------------------------------


def test_config_and_generator_seed_records(hs):
    assert hs.record_properties("contacts", "1") == {"email": "Ada@Example.com", "firstname": "Ada"}
    assert hs.record_properties("companies", 119) == {"domain": "c19.com", "external_id": "ERP-119"}
    assert hs.record_properties("companies", 120) is None
    assert hs.record_exists("companies", "119")


def test_config_from_dict_builds_the_new_fields():
    config = StandInConfig.from_dict(
        {
            "records": {"contacts": [{"id": "1", "properties": {"email": "a@x.com"}}]},
            "generated_records": [{"object_type": "contacts", "count": 2, "properties": {"email": "u{n}@x"}}],
            "properties": [{"object_type": "companies", "name": "external_id", "has_unique_value": True}],
            "objects_read_max_inputs": 50,
            "search": {"max_limit": 100, "rate_limit": {"max_requests": 2, "interval_ms": 500}},
        }
    )
    assert config.generated_records[0] == GeneratedRecords("contacts", 2, {"email": "u{n}@x"})
    assert config.properties[0].has_unique_value
    assert config.search.max_limit == 100 and config.search.rate_limit is not None
    assert config.search.rate_limit.max_requests == 2
    with pytest.raises(ValueError, match="unknown SearchConfig fields"):
        StandInConfig.from_dict({"search": {"max_limits": 1}})
    with pytest.raises(ValueError, match="lowercase"):
        PropertyConfig("contacts", "External ID")


def test_unique_values_and_unknown_properties_are_refused(hs):
    with pytest.raises(ValueError, match="already the value of record 100"):
        hs.add_records("companies", [{"id": "9001", "properties": {"external_id": "ERP-100"}}])
    with pytest.raises(ValueError, match="already the value of record 1"):
        hs.add_records("contacts", [{"id": "9002", "properties": {"email": "ADA@example.com"}}])
    with pytest.raises(ValueError, match="no properties"):
        hs.add_records("contacts", [{"id": "9003", "properties": {"shoe_size": "44"}}])
    with pytest.raises(ValueError, match="not a record id"):
        hs.add_records("contacts", [{"id": "abc", "properties": {}}])
    # Domains are not unique: two companies may share one.
    assert hs.add_records("companies", [{"id": "501", "properties": {"domain": "shared.com"}}]) == ["501"]


# -- the properties API --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_property_definitions(hs, version):
    status, email = request(hs, version, "property", object_type="contacts", name="email")
    assert status == 200 and email["name"] == "email" and email["hasUniqueValue"] is False
    status, domain = request(hs, version, "property", object_type="0-2", name="domain")
    assert status == 200 and domain["hasUniqueValue"] is False
    status, external = request(hs, version, "property", object_type="companies", name="external_id")
    assert status == 200 and external["hasUniqueValue"] is True and external["label"] == "ERP id"
    status, error = request(hs, version, "property", object_type="contacts", name="external_id")
    assert status == 404 and error["category"] == "OBJECT_NOT_FOUND" and "external_id" in error["message"]


def test_property_added_at_run_time_and_scopes(hs):
    hs.add_property("deals", "erp_deal_id", has_unique_value=True)
    status, body = request(hs, "2026-03", "property", object_type="deals", name="erp_deal_id")
    assert status == 200 and body["hasUniqueValue"] is True
    hs.add_token("pat-schemas-only", ["crm.schemas.deals.read"])
    assert (
        request(hs, "v4", "property", object_type="deals", name="dealname", token="pat-schemas-only")[0]
        == 200
    )
    status, error = request(
        hs, "v4", "property", object_type="contacts", name="email", token="pat-schemas-only"
    )
    assert status == 403 and error["category"] == "MISSING_SCOPES"


# -- object batch read ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_read_by_email_is_case_insensitive(hs, version):
    body = read_body([" ada@example.COM", "bob@example.com", "nobody@example.com"], "email", ["email"])
    status, answer = request(hs, version, "objects_batch_read", body)
    assert status == PARTIAL[version]
    # Results echo the record id and the requested properties, not the key sent.
    assert [(r["id"], r["properties"]["email"]) for r in answer["results"]] == [
        ("1", "Ada@Example.com"),
        ("2", "bob@example.com"),
    ]
    assert "firstname" not in answer["results"][0]["properties"]
    assert answer["numErrors"] == 1
    assert answer["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert answer["errors"][0]["context"] == {"ids": ["nobody@example.com"]}


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_read_by_unique_custom_property_is_exact(hs, version):
    keys = ["ERP-100", "erp-101", "ERP-119", "ERP-100"]
    status, answer = request(
        hs,
        version,
        "objects_batch_read",
        read_body(keys, "external_id", ["external_id"]),
        object_type="companies",
    )
    assert status == PARTIAL[version]
    assert [(r["id"], r["properties"]["external_id"]) for r in answer["results"]] == [
        ("100", "ERP-100"),
        ("119", "ERP-119"),
    ]
    assert answer["errors"][0]["context"] == {"ids": ["erp-101"]}
    status, answer = request(
        hs,
        version,
        "objects_batch_read",
        read_body(["ERP-105"], "external_id", ["domain"]),
        object_type="0-2",
    )
    assert status == 200 and "errors" not in answer
    assert answer["results"][0]["properties"]["domain"] == "c5.com"
    assert answer["results"][0]["properties"]["hs_object_id"] == "105"


def test_batch_read_refuses_keys_that_are_not_unique_or_unknown(hs):
    status, error = request(
        hs, "v4", "objects_batch_read", read_body(["shared.com"], "domain"), object_type="companies"
    )
    assert status == 400 and error["category"] == "VALIDATION_ERROR" and "unique" in error["message"]
    status, error = request(
        hs, "2026-09", "objects_batch_read", read_body(["x"], "erp"), object_type="companies"
    )
    assert status == 400 and "does not exist" in error["message"]


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_read_by_record_id(hs, version):
    hs.set_missing_records("contacts", ["404"])
    status, answer = request(
        hs, version, "objects_batch_read", read_body(["1", "0001", "7", "404", "x"], properties=[])
    )
    assert status == PARTIAL[version]
    results = {r["id"]: r["properties"] for r in answer["results"]}
    assert list(results) == ["1", "7"]  # 0001 is record 1; 7 exists without properties
    assert results["1"]["email"] == "Ada@Example.com" and results["1"]["firstname"] == "Ada"
    assert results["7"] == {k: results["7"][k] for k in ("hs_object_id", "createdate", "lastmodifieddate")}
    assert answer["errors"][0]["context"] == {"ids": ["404", "x"]}
    hs.set_missing_records("contacts", [])


def test_batch_read_caps_inputs_at_100_and_validates_the_body(hs):
    keys = [f"u{i}@x.com" for i in range(101)]
    status, error = request(hs, "v4", "objects_batch_read", read_body(keys, "email"))
    assert status == 400 and error["category"] == "VALIDATION_ERROR" and "101" in error["message"]
    assert request(hs, "2026-03", "objects_batch_read", read_body(keys[:100], "email"))[0] == 207
    violations = hs.stats.spec_violations
    status, error = request(hs, "2026-09", "objects_batch_read", {"inputs": [{"id": "1"}], "properties": []})
    assert status == 400 and "propertiesWithHistory" in error["message"]
    assert hs.stats.spec_violations == violations + 1


def test_removed_record_is_no_longer_found_and_its_key_can_move(hs):
    """A merge: the old id stops existing, its key now names the surviving record."""
    hs.add_records("contacts", [{"id": "30", "properties": {"email": "merged@x.com"}}])
    hs.remove_records("contacts", ["30"])
    hs.add_records("contacts", [{"id": "31", "properties": {"email": "merged@x.com"}}])
    status, answer = request(hs, "v4", "objects_batch_read", read_body(["merged@x.com"], "email"))
    assert status == 200 and [r["id"] for r in answer["results"]] == ["31"]
    assert not hs.record_exists("contacts", "30")
    status, answer = request(hs, "v4", "objects_batch_read", read_body(["30"]))
    assert status == 207 and answer["results"] == []
    reads = hs.stats.read_requests
    request(hs, "v4", "objects_batch_read", read_body(["31"]))
    assert hs.stats.read_requests == reads + 1


def test_objects_need_the_read_scope():
    with HubSpotStandIn(StandInConfig(rate_limit=None)) as hs:
        hs.add_token("pat-companies", ["crm.objects.companies.read"])
        status, error = request(hs, "v4", "objects_batch_read", read_body(["1"]), token="pat-companies")
        assert status == 403 and error["errors"][0]["context"]["requiredGranularScopes"] == [
            "crm.objects.contacts.read"
        ]
        assert (
            request(
                hs,
                "v4",
                "objects_batch_read",
                read_body(["1"]),
                object_type="companies",
                token="pat-companies",
            )[0]
            == 200
        )


@pytest.mark.hubspot_standin(
    rate_limit=None,
    records={"contacts": [{"id": "11", "properties": {"email": "dag@x.com"}}]},
    properties=[{"object_type": "contacts", "name": "external_id", "has_unique_value": True}],
    faults={"seed": 3, "error_5xx_ratio": 1.0, "error_5xx_statuses": [503]},
)
def test_the_pytest_marker_seeds_records_and_faults_reach_the_new_endpoints(hubspot_standin):
    hs = hubspot_standin
    assert hs.record_properties("contacts", "11") == {"email": "dag@x.com"}
    status, error = request(hs, "2026-09", "objects_batch_read", read_body(["dag@x.com"], "email"))
    assert status == 503 and error["category"] == "SERVICE_UNAVAILABLE"
    assert hs.stats.faults_injected["5xx"] == 1


def test_removed_records_fail_association_writes_too(hs):
    hs.add_records("contacts", [{"id": "40", "properties": {"email": "gone@x.com"}}])
    hs.remove_records("contacts", [40])
    response = call(hs, "v4", "batch_create", create_inputs([("40", "100")]))
    assert response.status_code == 207
    assert response.json()["errors"][0]["context"] == {"fromObjectId": ["40"]}
    assert hs.record_properties("contacts", "40") is None
