"""Issue 14 follow-ups through real Airflow (``dag.test()``) against the stand-in over HTTP: a ledger of
a load by business keys speaks of resolved record ids and reverts exactly; a dry-run revert reports
what it would remove and restore; the sensor confirms a revert record (removed types gone, restored
types back)."""

from __future__ import annotations

import json

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.association_types import AssociationType
from airflow_hubspot_assoc.ledger import Ledger, LedgerEntry
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.operators.revert import RevertAssociationsOperator
from airflow_hubspot_assoc.record import BatchRecord
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor
from tests.helpers import dag_id, run_dag, task_results, task_states
from tests.operators.test_ledger_revert import run_task, seed, stored

START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNLABELED = 279  # contacts -> companies
PRIMARY = 1
EXTERNAL_ID = {"object_type": "companies", "name": "external_id", "has_unique_value": True}
CONTACTS = {"object_type": "contacts", "count": 20, "properties": {"email": "user{n}@example.com"}}
COMPANIES = {
    "object_type": "companies",
    "count": 20,
    "first_id": 5001,
    "properties": {"external_id": "C-{n:04d}"},
}


def run(request, suffix: str, operator_class, **kwargs):
    """Run one operator alone in a DAG; return (state, XCom record)."""
    return run_task(request, operator_class, suffix, **kwargs)


@pytest.mark.hubspot_standin(generated_records=[CONTACTS, COMPANIES], properties=[EXTERNAL_ID])
def test_a_ledger_of_a_load_by_keys_records_resolved_ids_and_reverts_exactly(request, hubspot_conn, tmp_path):
    hs = hubspot_conn
    label = hs.add_label("contacts", "companies", "Former employer")
    # Contact n + 1 has email user{n}; company 5001 + n has external_id C-{n:04d}.
    seed(hs, [("1", "5001")], UNLABELED)  # had the unlabeled association: only the label may go
    seed(hs, [("2", "5002")], PRIMARY)
    seed(hs, [("1", "5009")], UNLABELED)  # not named by the input: never touched
    before = stored(hs)
    rows = [
        {"email": "User0@Example.com", "erp": "C-0000"},
        {"email": "user1@example.com", "erp": "C-0001"},
        {"email": "user2@example.com", "erp": "C-0002"},
        {"email": "nobody@example.com", "erp": "C-0003"},  # no such contact: fails, not in the ledger
        {"email": "user4@example.com", "erp": "C-9999"},  # no such company: fails, not in the ledger
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    hs.reset_stats()
    state, raw = run(
        request,
        "_create",
        BatchCreateAssociationsOperator,
        pairs_path=str(path),
        from_id_field="email",
        to_id_field="erp",
        from_id_property="email",
        to_id_property="external_id",
        association_label="Former employer",
        max_failed_ratio=0.5,
        ledger_path=str(tmp_path / "ledger" / "{run_id}"),
    )
    assert state == "success"
    assert (raw["created"], raw["failed"], raw["total"]) == (3, 2, 5)
    assert raw["ledgerReads"] == 1
    ledger = raw["ledgerPath"]
    assert ledger.startswith(str(tmp_path / "ledger")) and "{" not in ledger
    # The before read asked for the resolved record ids, after resolution and before the first write.
    endpoints = [r.endpoint for r in hs.requests]
    read_at = endpoints.index("batch_read")
    assert max(i for i, e in enumerate(endpoints) if e == "objects_batch_read") < read_at
    assert read_at < endpoints.index("batch_create")
    assert Ledger(ledger).load_before() == {
        ("1", "5001"): {AssociationType("HUBSPOT_DEFINED", UNLABELED)},
        # HubSpot adds the unlabeled type with the first label.
        ("2", "5002"): {
            AssociationType("HUBSPOT_DEFINED", PRIMARY),
            AssociationType("HUBSPOT_DEFINED", UNLABELED),
        },
    }
    entries = {(e.from_id, e.to_id): e for e in Ledger(ledger).entries()}
    assert set(entries) == {("1", "5001"), ("2", "5002"), ("3", "5003")}
    assert {t.type_id for t in entries[("1", "5001")].added} == {label}
    assert {t.type_id for t in entries[("2", "5002")].added} == {label}
    assert {t.type_id for t in entries[("3", "5003")].added} == {label, UNLABELED}

    state, raw = run(request, "_revert", RevertAssociationsOperator, ledger=ledger)
    assert state == "success"
    assert (raw["removed"], raw["restored"], raw["failed"]) == (3, 0, 0)
    assert stored(hs) == before


def mixed_ledger(hs, location) -> int:
    """A ledger with both kinds of change (written with the package's own writer): the run added a
    label to 1 -> 101 and removed Primary from 2 -> 102; HubSpot shows that state now."""
    label = hs.add_label("contacts", "companies", "Former employer")
    seed(hs, [("1", "101"), ("2", "102")], UNLABELED)
    seed(hs, [("1", "101")], label, "USER_DEFINED")
    ledger = Ledger(str(location))
    unlabeled = AssociationType("HUBSPOT_DEFINED", UNLABELED)
    primary = AssociationType("HUBSPOT_DEFINED", PRIMARY)
    labelled = AssociationType("USER_DEFINED", label)
    meta = {"fromType": "contacts", "toType": "companies", "portalId": None, "operation": "create"}
    ledger.save_before(
        {**meta, "fingerprint": {}}, {("1", "101"): {unlabeled}, ("2", "102"): {unlabeled, primary}}
    )
    ledger.write_part(
        0,
        [
            LedgerEntry("1", "101", frozenset({unlabeled}), frozenset({labelled}), frozenset()),
            LedgerEntry("2", "102", frozenset({unlabeled, primary}), frozenset(), frozenset({primary})),
        ],
    )
    return label


def test_a_dry_run_revert_reports_what_it_would_remove_and_restore(request, hubspot_conn, tmp_path):
    hs = hubspot_conn
    label = mixed_ledger(hs, tmp_path / "ledger")
    now = stored(hs)
    hs.reset_stats()
    state, raw = run(
        request, "_dry", RevertAssociationsOperator, ledger=str(tmp_path / "ledger"), dry_run=True
    )
    assert state == "success"
    assert raw["dryRun"] is True
    assert (raw["total"], raw["removed"], raw["restored"], raw["failed"]) == (2, 1, 1, 0)
    assert raw["removedSample"] == [
        {
            "from": "1",
            "to": "101",
            "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": label}],
        }
    ]
    assert raw["sample"] == [
        {
            "from": "2",
            "to": "102",
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": PRIMARY}],
        }
    ]
    assert BatchRecord.from_xcom(raw).summary().startswith("COMPLETE (dry run): 2 pairs read, 2 reverted")
    assert not [r for r in hs.requests if r.endpoint not in ("batch_read", "association_types", "labels")]
    assert stored(hs) == now


def test_the_sensor_confirms_a_revert_of_both_kinds(request, hubspot_conn, tmp_path):
    hs = hubspot_conn
    label = mixed_ledger(hs, tmp_path / "ledger")
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        revert = RevertAssociationsOperator(task_id="revert", ledger=str(tmp_path / "ledger"))
        HubSpotBatchStatusSensor(task_id="wait", batch=revert.output, poke_interval=0.2, timeout=30)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"revert": "success", "wait": "success"}
    results = task_results(dag_run)
    assert (results["revert"]["removed"], results["revert"]["restored"]) == (1, 1)
    assert (results["wait"]["status"], results["wait"]["expected"], results["wait"]["confirmed"]) == (
        "CONFIRMED",
        2,
        2,
    )
    assert stored(hs) == {
        ("1", "101", "HUBSPOT_DEFINED", UNLABELED),
        ("2", "102", "HUBSPOT_DEFINED", UNLABELED),
        ("2", "102", "HUBSPOT_DEFINED", PRIMARY),
    }
    assert not any(type_id == label for *_, type_id in stored(hs))


def test_the_sensor_confirms_the_revert_of_a_create_with_a_ledger(request, hubspot_conn, tmp_path):
    hs = hubspot_conn
    hs.add_label("contacts", "companies", "Former employer")
    seed(hs, [("1", "101")], UNLABELED)  # keeps its unlabeled association: only the label goes
    before = stored(hs)
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        create = BatchCreateAssociationsOperator(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            pairs=[["1", "101"], ["2", "102"]],
            association_label="Former employer",
            ledger_path=str(tmp_path / "ledgers" / "{run_id}"),
        )
        revert = RevertAssociationsOperator(task_id="revert", ledger=str(tmp_path / "ledgers" / "{run_id}"))
        wait = HubSpotBatchStatusSensor(task_id="wait", batch=revert.output, poke_interval=0.2, timeout=30)
        create >> revert >> wait
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"create": "success", "revert": "success", "wait": "success"}
    results = task_results(dag_run)
    revert_record = BatchRecord.from_xcom(results["revert"])
    # 2 -> 102 had nothing: its removal takes the whole pair (no types: no association left).
    assert {(p.key, len(p.types)) for p in revert_record.removed_sample} == {
        (("1", "101"), 1),
        (("2", "102"), 0),
    }
    assert revert_record.sample == ()
    assert (results["wait"]["status"], results["wait"]["confirmed"]) == ("CONFIRMED", 2)
    assert stored(hs) == before


CACHED = {
    "contacts": [
        {"id": "11", "properties": {"email": "ann@acme.com"}},
        {"id": "12", "properties": {"email": "bob@x.com"}},
    ],
    "companies": [
        {"id": "701", "properties": {"external_id": "C-1"}},
        {"id": "702", "properties": {"external_id": "C-2"}},
    ],
}


@pytest.mark.hubspot_standin(records=CACHED, properties=[EXTERNAL_ID])
def test_a_pair_sent_again_after_a_stale_cached_key_is_read_before_it_is_sent(
    request, hubspot_conn, tmp_path
):
    hs = hubspot_conn
    options = {
        "from_id_property": "email",
        "to_id_property": "external_id",
        "key_cache_path": str(tmp_path / "keys"),
        "association_type_id": UNLABELED,
    }
    state, first = run(
        request, "_warm", BatchCreateAssociationsOperator, pairs=[["ann@acme.com", "C-1"]], **options
    )
    assert state == "success" and first["created"] == 1  # the cache now says ann -> 11
    # Ann's contact is merged into 13, which already has Primary (and so the unlabeled type) with C-2.
    hs.remove_records("contacts", [11])
    hs.add_records("contacts", [{"id": "13", "properties": {"email": "ann@acme.com"}}])
    seed(hs, [("13", "702")], PRIMARY)
    before = stored(hs)
    hs.reset_stats()
    state, raw = run(
        request,
        "_load",
        BatchCreateAssociationsOperator,
        pairs=[["ann@acme.com", "C-2"], ["bob@x.com", "C-2"]],
        ledger_path=str(tmp_path / "ledger"),
        **options,
    )
    assert state == "success" and (raw["created"], raw["failed"]) == (2, 0)
    assert raw["resolution"]["from"]["refreshed"] == 1
    # The before read (11 and 12), then the late read of 13 before 13 -> 702 was sent again.
    assert raw["ledgerReads"] == 2
    endpoints = [r.endpoint for r in hs.requests]
    writes = [i for i, e in enumerate(endpoints) if e == "batch_create"]
    reads = [i for i, e in enumerate(endpoints) if e == "batch_read"]
    assert len(writes) == 2 and len(reads) == 2 and reads[1] < writes[1]
    # 13 -> 702 had the unlabeled type before the run: nothing changed, nothing to revert there.
    entries = {(e.from_id, e.to_id): e for e in Ledger(str(tmp_path / "ledger")).entries()}
    assert set(entries) == {("12", "702")}

    state, raw = run(request, "_revert", RevertAssociationsOperator, ledger=str(tmp_path / "ledger"))
    assert state == "success" and raw["removed"] == 1
    assert stored(hs) == before
    assert ("13", "702", "HUBSPOT_DEFINED", PRIMARY) in stored(hs)
