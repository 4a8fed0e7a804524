"""The example DAGs: they import cleanly (without network), follow the house style, and each one runs
to success in real Airflow (``dag.test()``) against the HubSpot stand-in over loopback HTTP."""

from __future__ import annotations

import csv
import json
import socket
from datetime import timedelta
from pathlib import Path

import pendulum
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import run_dag, task_results, task_states, write_csv

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
DAG_FILES = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
DAG_IDS = [p.stem for p in DAG_FILES]
#: DAGs that share a file with the DAG named after it (tested with their file's own tests).
EXTRA_DAG_IDS = ["example_hubspot_assets_consumer"]
UNLABELED = ("HUBSPOT_DEFINED", 279)  # contacts -> companies


def load_dag(dag_id: str):
    """Parse one example file the way the DAG processor does; return its DAG."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES / f"{dag_id}.py"))
    assert bag.import_errors == {}, bag.import_errors
    return bag.get_dag(dag_id)


@pytest.fixture
def quick_sensors(monkeypatch):
    """Example DAGs read the sensors' poke interval at parse time; a second suits the stand-in."""
    monkeypatch.setenv("HUBSPOT_EXAMPLE_POKE_INTERVAL", "1")


def stored(hs, types=UNLABELED):
    return {(f, t) for f, t, cat, tid in hs.associations("contacts", "companies") if (cat, tid) == types}


def all_stored(hs):
    return {(f, t) for f, t, _, _ in hs.associations("contacts", "companies")}


# -- parsing ---------------------------------------------------------------------------------------
def test_every_example_file_imports_without_errors_or_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError(f"an example DAG opened a connection at parse time: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(DAG_IDS + EXTRA_DAG_IDS)
    assert {Path(dag.fileloc).name for dag in bag.dags.values()} == {p.name for p in DAG_FILES}


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_example_follows_the_house_style(dag_id):
    dag = load_dag(dag_id)
    assert dag.doc_md and len(dag.doc_md) > 200, "doc_md explains the use case"
    assert {"example", "hubspot"} <= set(dag.tags)
    assert dag.catchup is False
    if dag_id not in ("example_hubspot_scheduled", "example_hubspot_sync"):
        assert dag.schedule is None, "schedule=None unless the example is about scheduling"
    source = (EXAMPLES / f"{dag_id}.py").read_text()
    assert source.startswith('"""') and "from __future__ import annotations" in source
    # The operator's output feeds the sensor: the data flow is visible in the graph.
    writers = ("BatchCreateAssociationsOperator", "SyncAssociationsOperator")
    creators = [t for t in dag.tasks if t.task_type in writers and not getattr(t, "is_dry_run", False)]
    sensors = [t for t in dag.tasks if t.task_type == "HubSpotBatchStatusSensor"]
    assert creators and len(sensors) == len(creators)
    for sensor in sensors:
        assert sensor.upstream_task_ids & {c.task_id for c in creators}


def test_scheduled_example_is_production_shaped():
    dag = load_dag("example_hubspot_scheduled")
    assert dag.schedule == "@daily"
    create = dag.get_task("create_associations")
    confirm = dag.get_task("confirm_associations")
    assert create.retries == 3 and create.retry_delay == timedelta(minutes=5)
    assert create.pool == "hubspot_app" and confirm.pool == "hubspot_app"
    assert confirm.deferrable is True
    assert "airflow pools set hubspot_app" in dag.doc_md


# -- running ---------------------------------------------------------------------------------------
def test_xcom_example_creates_and_confirms(hubspot_conn, quick_sensors):
    dag = load_dag("example_hubspot_xcom")
    dag_run = run_dag(dag, run_conf={"rows": 120})
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    results = task_results(dag_run)
    record = results["create_associations"]
    assert (record["total"], record["created"], record["failed"]) == (120, 120, 0)
    assert record["source"]["kind"] == "xcom"
    assert results["confirm_associations"]["status"] == "CONFIRMED"
    assert len(stored(hubspot_conn)) == 120


def test_files_example_creates_a_sample_export_maps_parts_and_sets_failures_aside(
    hubspot_conn, quick_sensors, tmp_path
):
    export = tmp_path / "export"  # missing: the DAG writes its sample export there
    hubspot_conn.set_missing_records("companies", ["50001"])
    dag = load_dag("example_hubspot_files")
    dag_run = run_dag(dag, run_conf={"export_dir": str(export)})
    states = task_states(dag_run)
    assert set(states.values()) == {"success"}, states
    assert [k for k in states if k.startswith("create_associations[")] == [
        f"create_associations[{i}]" for i in range(3)
    ]
    assert len([k for k in states if k.startswith("confirm_associations[")]) == 3
    results = task_results(dag_run)
    records = [results[f"create_associations[{i}]"] for i in range(3)]
    assert sum(r["total"] for r in records) == 600
    failed = sum(r["failed"] for r in records)
    assert failed > 0 and sum(r["created"] for r in records) == 600 - failed
    # Failed pairs sit next to each part, named so that the next listing skips them.
    for index, record in enumerate(records):
        part = export / f"part-{index:05d}.csv"
        assert record["source"]["path"] == str(part)
        assert record["failedPairsPath"] == str(export / f"_part-{index:05d}.failed.jsonl")
    entries = [
        json.loads(line)
        for path in sorted(export.glob("_part-*.failed.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(entries) == failed
    assert {e["to_id"] for e in entries} == {"50001"}
    assert all(e["category"] == "VALIDATION_ERROR" for e in entries)
    for i in range(3):
        assert results[f"confirm_associations[{i}]"]["status"] == "CONFIRMED"
    assert len(stored(hubspot_conn)) == 600 - failed


def test_files_example_reads_csv_and_parquet_parts_of_an_existing_export(
    hubspot_conn, quick_sensors, tmp_path
):
    export = tmp_path / "spark-export"
    export.mkdir()
    write_csv(export / "part-00000.csv", [(1, 101), (2, 102)])
    pq.write_table(pa.table({"from_id": ["3", "4"], "to_id": ["103", "104"]}), export / "part-00001.parquet")
    (export / "_SUCCESS").write_text("")
    (export / "_part-00000.failed.jsonl").write_text("")  # from an earlier run: not an input
    (export / "README.txt").write_text("not data")
    dag_run = run_dag(load_dag("example_hubspot_files"), run_conf={"export_dir": str(export)})
    states = task_states(dag_run)
    assert set(states.values()) == {"success"}, states
    results = task_results(dag_run)
    assert results["list_parts"] == [str(export / "part-00000.csv"), str(export / "part-00001.parquet")]
    assert stored(hubspot_conn) == {("1", "101"), ("2", "102"), ("3", "103"), ("4", "104")}


def test_labels_example_creates_one_label_and_per_row_labels(hubspot_conn, quick_sensors, tmp_path):
    billing = hubspot_conn.add_label("contacts", "companies", "Billing contact")
    decision = hubspot_conn.add_label("contacts", "companies", "Decision maker")
    labels_file = tmp_path / "roles" / "contact_company_roles.csv"
    dag_run = run_dag(load_dag("example_hubspot_labels"), run_conf={"labels_file": str(labels_file)})
    states = task_states(dag_run)
    assert set(states.values()) == {"success"}, states
    results = task_results(dag_run)
    assert results["label_billing_contacts"]["associationTypes"] == [
        {"associationCategory": "USER_DEFINED", "associationTypeId": billing}
    ]
    assert results["confirm_billing_contacts"]["status"] == "CONFIRMED"
    assert results["confirm_per_row"]["status"] == "CONFIRMED"
    with labels_file.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    expect = {
        "Billing contact": ("USER_DEFINED", billing),
        "Decision maker": ("USER_DEFINED", decision),
        "": UNLABELED,
    }
    for label, types in expect.items():
        pairs = {(r["from_id"], r["to_id"]) for r in rows if r["association_label"] == label}
        assert pairs and pairs <= stored(hubspot_conn, types), label
    billing_pairs = {(str(2_000 + i), str(7_000 + i % 10)) for i in range(40)}
    assert billing_pairs <= stored(hubspot_conn, ("USER_DEFINED", billing))


KEY_RECORDS = [
    {
        "object_type": "contacts",
        "count": 150,
        "first_id": 501,
        "properties": {"email": "user{n}@example.com"},
    },
    {"object_type": "companies", "count": 30, "first_id": 9001, "properties": {"domain": "co{n}.example"}},
]


@pytest.mark.hubspot_standin(generated_records=KEY_RECORDS)
def test_keys_example_resolves_once_confirms_all_and_reuses_the_cache(hubspot_conn, quick_sensors, tmp_path):
    export = tmp_path / "crm" / "contact_companies.csv"  # missing: the DAG writes its sample there
    dag = load_dag("example_hubspot_keys")
    first = run_dag(dag, run_conf={"pairs_file": str(export)})
    assert set(task_states(first).values()) == {"success"}, task_states(first)
    record = task_results(first)["create_associations"]
    assert (record["total"], record["created"], record["failed"]) == (152, 150, 2)
    assert record["resolution"]["to"]["property"] == "domain"
    expected = {(str(501 + n), str(9001 + n % 30)) for n in range(150)}
    assert stored(hubspot_conn) == expected
    # The sensor read all 150 back, through the key cache next to the export, without lookups.
    confirm = task_results(first)["confirm_associations"]
    assert (confirm["status"], confirm["expected"], confirm["confirmed"]) == ("CONFIRMED", 150, 150)
    assert record["resolution"]["to"]["keyMap"].startswith(str(export.parent / "_key_cache"))
    lookups = [e.endpoint for e in hubspot_conn.requests if e.endpoint.startswith("objects_")]
    assert sorted(lookups) == ["objects_batch_read", "objects_batch_read", "objects_search"]
    failed = [json.loads(line) for line in (export.parent / "_contact_companies.failed.jsonl").open()]
    assert {f["category"] for f in failed} == {"UNRESOLVED_KEY"}
    # A second run finds every resolved key in the cache: only the two unknown emails are read again.
    second = run_dag(
        dag, run_conf={"pairs_file": str(export)}, logical_date=pendulum.datetime(2026, 2, 1, tz="UTC")
    )
    assert set(task_states(second).values()) == {"success"}, task_states(second)
    again = task_results(second)["create_associations"]["resolution"]
    assert (again["from"]["fromCache"], again["to"]["fromCache"]) == (150, 30)
    lookups = [e.endpoint for e in hubspot_conn.requests if e.endpoint.startswith("objects_")]
    assert sorted(lookups) == ["objects_batch_read"] * 3 + ["objects_search"]


@pytest.mark.hubspot_standin(visibility_delay_s=2.0)
def test_scheduled_example_defers_until_hubspot_shows_the_pairs(hubspot_conn, quick_sensors, tmp_path):
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("hubspot_app", slots=4, description="HubSpot app", include_deferred=False)
    day = pendulum.datetime(2026, 3, 1, tz="UTC")
    dag_run = run_dag(
        load_dag("example_hubspot_scheduled"), logical_date=day, run_conf={"export_root": str(tmp_path)}
    )
    states = task_states(dag_run)
    assert set(states.values()) == {"success"}, states
    results = task_results(dag_run)
    partition = tmp_path / "dt=2026-03-01"
    assert results["daily_export"] == str(partition)
    record = results["create_associations"]
    # HubSpot answered PROCESSING (not visible yet), so the sensor had to wait in the triggerer.
    assert record["status"] == "PROCESSING" and record["created"] == 150
    assert record["failedPairsPath"] == str(partition / "_failed.jsonl")
    assert results["confirm_associations"]["status"] == "CONFIRMED"
    assert results["confirm_associations"]["confirmed"] == 150
    assert len(all_stored(hubspot_conn)) == 150


def test_sync_example_syncs_daily_and_plans_then_applies_on_mondays(hubspot_conn, quick_sensors, tmp_path):
    primary = ("HUBSPOT_DEFINED", 1)
    conf = {"export_root": str(tmp_path), "state_path": str(tmp_path / "_state")}
    sunday = pendulum.datetime(2026, 3, 1, tz="UTC")
    assert sunday.day_of_week == pendulum.SUNDAY
    dag = load_dag("example_hubspot_sync")
    outcomes = []
    for day in (sunday, sunday.add(days=1), sunday.add(days=2)):
        hubspot_conn.reset_stats()
        dag_run = run_dag(dag, logical_date=day, run_conf=conf)
        states, results = task_states(dag_run), task_results(dag_run)
        ran = sorted(name for name, state in states.items() if state == "success")
        writes = hubspot_conn.stats.write_requests
        outcomes.append((ran, writes, results))
        with (tmp_path / f"dt={day.to_date_string()}" / "contact_company.csv").open() as handle:
            expected = {(row["from_id"], row["to_id"]) for row in csv.DictReader(handle)}
        assert stored(hubspot_conn, primary) == expected
    (sun, sun_writes, sun_results), (mon, mon_writes, mon_results), (tue, tue_writes, tue_results) = outcomes
    assert sun == ["confirm_sync", "desired_state", "plan_or_sync", "sync_changes"]
    assert sun_results["sync_changes"]["created"] == 200 and sun_writes == 2
    assert mon == ["apply_plan", "confirm_plan", "desired_state", "plan_changes", "plan_or_sync"]
    assert mon_results["plan_changes"]["planned"] == {"creates": 10, "removals": 10}
    assert mon_results["plan_changes"]["dryRun"] is True
    applied = mon_results["apply_plan"]
    assert (applied["created"], applied["removed"], applied["planPath"]) == (
        10,
        10,
        mon_results["plan_changes"]["planPath"],
    )
    assert mon_writes == 2  # one create request and one removal request
    assert tue == sun
    assert (tue_results["sync_changes"]["created"], tue_results["sync_changes"]["removed"], tue_writes) == (
        10,
        10,
        2,
    )


@pytest.mark.hubspot_standin(missing_records={"companies": ["9003"]})
def test_revert_example_reverts_a_load_that_fails_its_check(hubspot_conn, quick_sensors, tmp_path):
    # One contact already had its company: the revert must leave that association alone.
    from tests.testing.support import call, create_inputs

    call(hubspot_conn, "v4", "batch_create", create_inputs([("4000", "9000")]))
    dag_run = run_dag(
        load_dag("example_hubspot_revert"), run_conf={"ledger_root": str(tmp_path), "max_failed_ratio": 0.05}
    )
    states = task_states(dag_run)
    assert states["check_load"] == "success" and states["revert_load"] == "success", states
    assert states["keep_load"] == "skipped"
    results = task_results(dag_run)
    load = results["load_associations"]
    assert (load["created"], load["failed"]) == (45, 5)
    assert load["ledgerReads"] == 1 and load["ledgerPath"].startswith(str(tmp_path))
    revert = results["revert_load"]
    assert (revert["operation"], revert["removed"], revert["failed"]) == ("revert", 44, 0)
    assert all_stored(hubspot_conn) == {("4000", "9000")}


def test_revert_example_keeps_a_load_that_passes_its_check(hubspot_conn, quick_sensors, tmp_path):
    dag_run = run_dag(load_dag("example_hubspot_revert"), run_conf={"ledger_root": str(tmp_path)})
    states = task_states(dag_run)
    assert states["keep_load"] == "success" and states["revert_load"] == "skipped", states
    assert len(all_stored(hubspot_conn)) == 50
