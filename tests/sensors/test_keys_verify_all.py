"""``verify="all"`` of a load by business keys: the sensor maps the input's keys through the files
the load wrote (key cache or beside the failed pairs) and never resolves them again."""

from __future__ import annotations

import json
import math

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.readback.expected import ExpectedPairs
from airflow_hubspot_assoc.record import BatchRecord
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor
from tests.helpers import dag_id, run_dag, task_results, task_states

START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNLABELED = ("HUBSPOT_DEFINED", 279)
EXTERNAL_ID = {"object_type": "companies", "name": "external_id", "has_unique_value": True}
CONTACTS = {"object_type": "contacts", "count": 300, "properties": {"email": "user{n}@example.com"}}
COMPANIES = {
    "object_type": "companies",
    "count": 120,
    "first_id": 5001,
    "properties": {"external_id": "C-{n:04d}", "domain": "co{n}.example"},
}
LOOKUPS = ("objects_batch_read", "objects_search", "property")


def lookups(hs) -> dict[str, int]:
    counts = dict.fromkeys(LOOKUPS, 0)
    for entry in hs.requests:
        if entry.endpoint in counts:
            counts[entry.endpoint] += 1
    return counts


def run(request, rows, tmp_path, **options):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        create = BatchCreateAssociationsOperator(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            pairs_path=str(path),
            from_id_field="email",
            to_id_field="company",
            from_id_property="email",
            association_type_id=279,
            **options,
        )
        HubSpotBatchStatusSensor(
            task_id="wait", batch=create.output, verify="all", poke_interval=0.3, timeout=60
        )
    dag_run = run_dag(dag)
    return task_states(dag_run), task_results(dag_run)


@pytest.mark.hubspot_standin(generated_records=[CONTACTS, COMPANIES], properties=[EXTERNAL_ID])
def test_verify_all_confirms_every_pair_through_the_keys_written_beside_the_failed_pairs(
    request, hubspot_conn, tmp_path
):
    # 250 contacts (in other spellings than HubSpot's) -> 120 companies by a unique property, and
    # three rows whose contact does not exist: more than the record's sample of 100.
    rows = [{"email": f" User{n}@EXAMPLE.com", "company": f"C-{n % 120:04d}"} for n in range(250)]
    rows += [{"email": f"ghost{n}@example.com", "company": "C-0001"} for n in range(3)]
    states, results = run(
        request,
        rows,
        tmp_path,
        to_id_property="external_id",
        failed_pairs_path=str(tmp_path / "failed.jsonl"),
        max_failed_ratio=0.05,
    )
    assert states == {"create": "success", "wait": "success"}
    record, summary = results["create"], results["wait"]
    assert (record["created"], record["failed"], record["total"]) == (250, 3, 253)
    assert len(record["sample"]) < record["created"]
    # Every created pair was read back, none of the unresolved ones waited for.
    assert (summary["expected"], summary["confirmed"]) == (250, 250)
    key_maps = {side: record["resolution"][side]["keyMap"] for side in ("from", "to")}
    assert key_maps == {side: f"{tmp_path}/failed.jsonl.{side}-keys.json" for side in ("from", "to")}
    assert (
        json.loads((tmp_path / "failed.jsonl.from-keys.json").read_text())["ids"]["user7@example.com"] == "8"
    )
    # The only lookups are the operator's: ceil(253 / 100) contact reads, ceil(120 / 100) company
    # reads and one property check. A sensor resolving again would add reads.
    spent = lookups(hubspot_conn)
    assert spent == {
        "objects_batch_read": math.ceil(253 / 100) + math.ceil(120 / 100),
        "objects_search": 0,
        "property": 1,
    }
    assert sum(record["resolution"][side]["requests"] for side in ("from", "to")) == sum(spent.values())
    stored = {
        (f, t)
        for f, t, cat, tid in hubspot_conn.associations("contacts", "companies")
        if (cat, tid) == UNLABELED
    }
    assert stored == {(str(n + 1), str(5001 + n % 120)) for n in range(250)}


@pytest.mark.hubspot_standin(generated_records=[CONTACTS, COMPANIES], properties=[EXTERNAL_ID])
def test_verify_all_maps_domains_through_the_key_cache_without_searching_again(
    request, hubspot_conn, tmp_path
):
    cache = tmp_path / "keys"
    rows = [
        {"email": f"user{n}@example.com", "company": f"https://www.co{n % 120}.example/about"}
        for n in range(210)
    ]
    states, results = run(request, rows, tmp_path, to_id_property="domain", key_cache_path=str(cache))
    assert states == {"create": "success", "wait": "success"}
    record = results["create"]
    assert (record["created"], record["failed"]) == (210, 0)
    assert (results["wait"]["expected"], results["wait"]["confirmed"]) == (210, 210)
    paths = {side: record["resolution"][side]["keyMap"] for side in ("from", "to")}
    assert paths["to"].startswith(str(cache)) and paths["to"].endswith("/companies/domain.json")
    assert paths["from"].endswith("/contacts/email.json")
    # One search of 120 domains (five IN filters of 100 take 500) and ceil(210 / 100) reads: the operator's.
    assert lookups(hubspot_conn) == {"objects_batch_read": 3, "objects_search": 1, "property": 0}


def keyed_record(tmp_path, ids: dict[str, str], *, created: int, failed: int) -> BatchRecord:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("email,company\n" + "".join(f"u{n}@x.com,{n + 1}\n" for n in range(created + failed)))
    key_map = tmp_path / "from-keys.json"
    key_map.write_text(
        json.dumps({"format": 1, "portal": "", "objectType": "contacts", "property": "email", "ids": ids})
    )
    return BatchRecord.from_xcom(
        {
            "status": "COMPLETE",
            "fromObjectType": "contacts",
            "toObjectType": "companies",
            "created": created,
            "failed": failed,
            "total": created + failed,
            "source": {"kind": "path", "path": str(pairs), "fromIdField": "email", "toIdField": "company"},
            "sample": [],
            "resolution": {"from": {"objectType": "contacts", "property": "email", "keyMap": str(key_map)}},
        }
    )


def test_keys_missing_from_the_file_beyond_the_failed_count_fail_instead_of_waiting_for_less(tmp_path):
    ids = {f"u{n}@x.com": str(100 + n) for n in range(120)}
    good = keyed_record(tmp_path, ids, created=120, failed=0)
    expected = [(p.from_id, p.to_id) for p in ExpectedPairs(good, "all", lambda name: ("", 0))]
    assert expected == [(str(100 + n), str(n + 1)) for n in range(120)]
    # The cache was replaced since the load: two keys the load resolved are gone from it.
    stale = keyed_record(
        tmp_path, {k: v for k, v in ids.items() if k not in ("u3@x.com", "u4@x.com")}, created=120, failed=0
    )
    with pytest.raises(HubSpotConfigError, match=r"not in the load's key files.*u3@x.com"):
        list(ExpectedPairs(stale, "all", lambda name: ("", 0)))


def test_a_missing_or_broken_key_file_is_an_error_naming_it(tmp_path):
    record = keyed_record(tmp_path, {"u0@x.com": "5"}, created=120, failed=0)
    (tmp_path / "from-keys.json").write_text('{"format": 1, "property": "domain", "ids": {}}')
    with pytest.raises(HubSpotConfigError, match=r"Cannot read the from keys \(email\).*from-keys.json"):
        list(ExpectedPairs(record, "all", lambda name: ("", 0)))
    (tmp_path / "from-keys.json").unlink()
    with pytest.raises(HubSpotConfigError, match="no such file"):
        list(ExpectedPairs(record, "all", lambda name: ("", 0)))
