"""Loading by email, domain or a unique property, through ``dag.test()`` against the stand-in."""

from __future__ import annotations

import json
import math
import re

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.exceptions import HubSpotConfigError, PairInputError
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from tests.helpers import dag_id, run_dag, task_results, task_states

START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNLABELED = ("HUBSPOT_DEFINED", 279)  # contacts -> companies
EXTERNAL_ID = {"object_type": "companies", "name": "external_id", "has_unique_value": True}
CONTACTS = {"object_type": "contacts", "count": 300, "properties": {"email": "user{n}@example.com"}}
COMPANIES = {
    "object_type": "companies",
    "count": 120,
    "first_id": 5001,
    "properties": {"external_id": "C-{n:04d}"},
}


def run_operator(request, **kwargs):
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        BatchCreateAssociationsOperator(
            task_id="create", from_object_type="contacts", to_object_type="companies", **kwargs
        )
    dag_run = run_dag(dag)
    return task_states(dag_run)["create"], task_results(dag_run).get("create")


def endpoint_counts(hs) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in hs.requests:
        counts[entry.endpoint] = counts.get(entry.endpoint, 0) + 1
    return counts


def stored(hs) -> set[tuple[str, str]]:
    return {(f, t) for f, t, cat, tid in hs.associations("contacts", "companies") if (cat, tid) == UNLABELED}


def accounted(record) -> bool:
    total = record["created"] + record["failed"] + record["invalid"] + record["duplicates"]
    return bool(total == record["total"])


@pytest.mark.hubspot_standin(generated_records=[CONTACTS, COMPANIES], properties=[EXTERNAL_ID])
def test_email_to_unique_property_resolves_each_key_once_in_fewest_reads(request, hubspot_conn, tmp_path):
    # 300 distinct contacts (mixed case, padded) and 120 companies, each pair twice over: 600 rows.
    rows = [
        {"email": f" User{n}@Example.com " if n % 2 else f"user{n}@example.com", "erp": f"C-{n % 120:04d}"}
        for n in range(300)
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + rows))
    state, record = run_operator(
        request,
        pairs_path=str(path),
        from_id_field="email",
        to_id_field="erp",
        from_id_property="email",
        to_id_property="external_id",
        association_type_id=279,
    )
    assert state == "success"
    # Duplicates are dropped within a batch only; HubSpot takes the same association twice.
    assert (record["created"] + record["duplicates"], record["failed"], record["total"]) == (600, 0, 600)
    assert accounted(record)
    counts = endpoint_counts(hubspot_conn)
    # ceil(300 / 100) contact reads + ceil(120 / 100) company reads; one property check (email needs none)
    assert counts["objects_batch_read"] == math.ceil(300 / 100) + math.ceil(120 / 100)
    assert counts["property"] == 1
    assert "objects_search" not in counts
    assert stored(hubspot_conn) == {(str(n + 1), str(5001 + n % 120)) for n in range(300)}
    resolution = record["resolution"]
    assert resolution["from"] == {
        "objectType": "contacts",
        "property": "email",
        "distinctKeys": 300,
        "resolved": 300,
        "unresolved": 0,
        "ambiguous": 0,
        "fromCache": 0,
        "refreshed": 0,
        "requests": 3,
    }
    assert resolution["to"]["distinctKeys"] == 120 and resolution["to"]["requests"] == 1 + 2
    assert all(re.fullmatch(r"\d+", pair["from"]) for pair in record["sample"])


DOMAINS = {
    "companies": [
        {"id": "701", "properties": {"domain": "acme.com"}},
        {"id": "702", "properties": {"domain": "dup.com"}},
        {"id": "703", "properties": {"domain": "dup.com"}},
    ],
    "contacts": [
        {"id": "11", "properties": {"email": "ann@acme.com"}},
        {"id": "12", "properties": {"email": "bob@dup.com"}},
    ],
}


@pytest.mark.hubspot_standin(records=DOMAINS)
def test_domains_resolve_once_ambiguous_and_missing_fail_pair_by_pair(request, hubspot_conn, tmp_path):
    failed_path = tmp_path / "failed.jsonl"
    pairs = [
        ["ann@acme.com", "https://www.Acme.com/about"],
        ["bob@dup.com", "dup.com"],
        ["ann@acme.com", "nowhere.org"],
        ["nobody@x.com", "acme.com"],
    ]
    state, record = run_operator(
        request,
        pairs=pairs,
        from_id_property="email",
        to_id_property="domain",
        failed_pairs_path=str(failed_path),
        max_failed_ratio=0.8,
    )
    assert state == "success"
    assert (record["created"], record["failed"], record["total"]) == (1, 3, 4) and accounted(record)
    assert stored(hubspot_conn) == {("11", "701")}
    counts = endpoint_counts(hubspot_conn)
    assert counts["objects_search"] == 1 and counts["objects_batch_read"] == 1
    assert "property" not in counts
    failed = {f["line"]: f for f in map(json.loads, failed_path.read_text().splitlines())}
    assert failed[2]["category"] == "AMBIGUOUS_KEY"
    assert failed[2]["candidates"] == ["702", "703"] and "702, 703" in failed[2]["message"]
    assert (failed[2]["side"], failed[2]["property"], failed[2]["value"]) == ("to", "domain", "dup.com")
    assert (failed[2]["from_id"], failed[2]["to_id"]) == ("bob@dup.com", "dup.com")
    assert failed[3]["category"] == "UNRESOLVED_KEY" and failed[3]["value"] == "nowhere.org"
    assert (failed[4]["category"], failed[4]["side"], failed[4]["property"]) == (
        "UNRESOLVED_KEY",
        "from",
        "email",
    )
    assert record["resolution"]["to"]["ambiguous"] == 1 and record["resolution"]["to"]["unresolved"] == 1
    assert {e["category"] for e in record["errors"]} == {"AMBIGUOUS_KEY", "UNRESOLVED_KEY"}


@pytest.mark.hubspot_standin(records=DOMAINS)
def test_unresolved_keys_count_against_max_failed_ratio(request, hubspot_conn):
    state, _ = run_operator(
        request,
        pairs=[["ann@acme.com", "acme.com"], ["ann@acme.com", "nowhere.org"]],
        from_id_property="email",
        to_id_property="domain",
    )
    assert state == "failed"
    assert stored(hubspot_conn) == {("11", "701")}


@pytest.mark.hubspot_standin(records=DOMAINS)
@pytest.mark.hubspot_conn(api_version="2026-03")
def test_dry_run_resolves_through_dated_paths_and_writes_nothing(request, hubspot_conn):
    state, record = run_operator(
        request,
        pairs=[["ann@acme.com", "acme.com"], ["bob@dup.com", "acme.com"]],
        from_id_property="email",
        to_id_property="domain",
        dry_run=True,
    )
    assert state == "success"
    assert record["dryRun"] and record["created"] == 0
    assert record["resolution"]["from"]["resolved"] == 2 and record["resolution"]["to"]["resolved"] == 1
    paths = {entry.path for entry in hubspot_conn.requests}
    assert "/crm/objects/2026-03/contacts/batch/read" in paths
    assert "/crm/objects/2026-03/companies/search" in paths
    assert not [e for e in hubspot_conn.requests if e.endpoint in ("batch_create", "batch_associate_default")]


NOT_UNIQUE = {"object_type": "companies", "name": "erp_code", "has_unique_value": False}


@pytest.mark.hubspot_standin(properties=[NOT_UNIQUE])
def test_a_property_without_unique_values_or_unknown_fails_before_reading(hubspot_conn):
    for name, reason in (("erp_code", "does not have unique values"), ("nope", "has no property 'nope'")):
        op = BatchCreateAssociationsOperator(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            pairs=[["1", "x"]],
            to_id_property=name,
        )
        with pytest.raises(HubSpotConfigError, match=rf"to_id_property='{name}'.*{reason}"):
            op.execute({})
    assert {e.endpoint for e in hubspot_conn.requests} == {"property"}


def test_domain_on_contacts_fails_naming_the_parameter(hubspot_conn):
    op = BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=[["a", "b"]],
        from_id_property="domain",
    )
    with pytest.raises(HubSpotConfigError, match="from_id_property='domain' is only a key of companies"):
        op.execute({})
    assert hubspot_conn.requests == []


@pytest.mark.hubspot_standin(records=DOMAINS)
def test_bad_keys_fail_before_any_request_naming_file_line_and_field(hubspot_conn, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("email,domain\nann@acme.com,acme.com\n   ,acme.com\n")
    op = BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(path),
        from_id_field="email",
        to_id_field="domain",
        from_id_property="email",
        to_id_property="domain",
    )
    with pytest.raises(PairInputError, match=r"p\.csv.*line 3.*email.*only whitespace"):
        op.execute({})
    assert not [e for e in hubspot_conn.requests if e.endpoint.startswith("objects")]


CACHED = {
    "contacts": [
        {"id": "11", "properties": {"email": "ann@acme.com"}},
        {"id": "12", "properties": {"email": "bob@x.com"}},
        {"id": "14", "properties": {"email": "carol@x.com"}},
    ],
    "companies": [
        {"id": "701", "properties": {"external_id": "C-1"}},
        {"id": "702", "properties": {"external_id": "C-2"}},
    ],
}


@pytest.mark.hubspot_standin(records=CACHED, properties=[EXTERNAL_ID])
def test_key_cache_spares_requests_and_a_merged_record_is_resolved_again(request, hubspot_conn, tmp_path):
    cache = tmp_path / "keys"
    options = {
        "from_id_property": "email",
        "to_id_property": "external_id",
        "key_cache_path": str(cache),
        "association_type_id": 279,
    }
    state, first = run_operator(request, pairs=[["Ann@acme.com", "C-1"], ["bob@x.com", "C-2"]], **options)
    assert state == "success" and first["created"] == 2
    files = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.json"))
    assert [f.split("/", 1)[1] for f in files] == ["companies/external_id.json", "contacts/email.json"]
    assert json.loads((cache / files[1]).read_text())["ids"] == {"ann@acme.com": "11", "bob@x.com": "12"}

    # Ann's contact is merged into a new record (13); Carol is new to the cache.
    hubspot_conn.remove_records("contacts", [11])
    hubspot_conn.add_records("contacts", [{"id": "13", "properties": {"email": "ann@acme.com"}}])
    before = endpoint_counts(hubspot_conn)
    pairs = [["ann@acme.com", "C-2"], ["bob@x.com", "C-1"], ["carol@x.com", "C-1"]]
    with DAG(dag_id(request) + "_2", schedule=None, start_date=START, catchup=False) as dag:
        BatchCreateAssociationsOperator(
            task_id="create", from_object_type="contacts", to_object_type="companies", pairs=pairs, **options
        )
    dag_run = run_dag(dag)
    assert task_states(dag_run)["create"] == "success"
    second = task_results(dag_run)["create"]
    assert (second["created"], second["failed"], second["total"]) == (3, 0, 3) and accounted(second)
    after = endpoint_counts(hubspot_conn)
    # Carol's read; then the refused pair's cached keys once more, on both sides (the failure does
    # not say which record is gone): Ann's now names 13, C-2's is unchanged.
    assert after["objects_batch_read"] - before["objects_batch_read"] == 1 + 2
    assert second["resolution"]["from"]["fromCache"] == 2 and second["resolution"]["from"]["refreshed"] == 1
    assert second["resolution"]["to"]["fromCache"] == 2 and second["resolution"]["to"]["refreshed"] == 1
    assert second["resolution"]["to"]["requests"] == 1 + 1  # the property check, the refresh
    assert {("13", "702"), ("12", "701"), ("14", "701")} <= stored(hubspot_conn)
    saved = json.loads((cache / files[1]).read_text())["ids"]
    assert saved == {"ann@acme.com": "13", "bob@x.com": "12", "carol@x.com": "14"}


@pytest.mark.hubspot_standin(records=DOMAINS)
def test_the_sensor_confirms_a_key_based_load_from_the_resolved_ids_in_the_sample(request, hubspot_conn):
    from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        create = BatchCreateAssociationsOperator(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            pairs=[["ann@acme.com", "acme.com"], ["bob@dup.com", "www.acme.com"]],
            from_id_property="email",
            to_id_property="domain",
        )
        HubSpotBatchStatusSensor(task_id="wait", batch=create.output, poke_interval=0.3, timeout=30)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"create": "success", "wait": "success"}
    sample = task_results(dag_run)["create"]["sample"]
    assert {(p["from"], p["to"]) for p in sample} == {("11", "701"), ("12", "701")}
    reads = [e for e in hubspot_conn.requests if e.endpoint == "batch_read"]
    assert reads  # the sensor read the associations back by record id


def test_verify_all_of_a_key_based_load_uses_the_sample_or_says_why_it_cannot():
    from airflow_hubspot_assoc.readback.expected import ExpectedPairs
    from airflow_hubspot_assoc.record import BatchRecord

    base = BatchRecord.from_xcom(
        {
            "status": "COMPLETE",
            "fromObjectType": "contacts",
            "toObjectType": "companies",
            "created": 1,
            "total": 1,
            "source": {"kind": "path", "path": "/nowhere.csv", "fromIdField": "email", "toIdField": "domain"},
            "sample": [{"from": "11", "to": "701", "types": []}],
            "resolution": {"from": {"property": "email"}, "to": {"property": "domain"}},
        }
    )
    assert [(p.from_id, p.to_id) for p in ExpectedPairs(base, "all", lambda name: ("", 0))] == [("11", "701")]
    many = BatchRecord.from_xcom({**base.to_xcom(), "created": 500, "total": 500})
    with pytest.raises(
        HubSpotConfigError, match=r"verify='all' cannot read back this load by keys \(from: email"
    ):
        list(ExpectedPairs(many, "all", lambda name: ("", 0)))
