"""The ledger and the revert (issue 14) through real Airflow (``dag.test()``) against the stand-in over
HTTP, v4 and a dated version: a revert brings the touched pairs back to exactly what they showed
before the run (labels added to pairs that had an unlabeled association go alone; pairs that had
nothing lose everything), restores what an archive removed, changes nothing the second time, stays
exact across a crash and resume, and a dry run sends nothing."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.ledger import Ledger
from airflow_hubspot_assoc.load import LoadStopped
from airflow_hubspot_assoc.operators.archive import BatchArchiveAssociationsOperator
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.operators.revert import RevertAssociationsOperator
from airflow_hubspot_assoc.record import BatchRecord
from tests.helpers import dag_id, run_dag, task_results, task_states
from tests.testing.support import call, create_inputs

START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNLABELED = 279  # contacts -> companies
PRIMARY = 1
VERSIONS = ["v4", pytest.param("2026-09", marks=pytest.mark.hubspot_conn(api_version="2026-09"))]
WRITE_ENDPOINTS = ("batch_create", "batch_associate_default", "batch_archive", "batch_labels_archive")


def run_task(request, operator_class, suffix: str = "", **kwargs):
    """Run one operator alone in a DAG; return (state, XCom record)."""
    if operator_class is not RevertAssociationsOperator:
        kwargs.setdefault("from_object_type", "contacts")
        kwargs.setdefault("to_object_type", "companies")
    with DAG(dag_id(request) + suffix, schedule=None, start_date=START, catchup=False) as dag:
        operator_class(task_id="task", **kwargs)
    dag_run = run_dag(dag)
    return task_states(dag_run)["task"], task_results(dag_run).get("task")


def seed(hs, pairs, type_id: int, category: str = "HUBSPOT_DEFINED") -> None:
    call(hs, "v4", "batch_create", create_inputs(pairs, type_id, category))


def stored(hs) -> set[tuple[str, str, str, int]]:
    return set(hs.associations("contacts", "companies"))


def writes(hs) -> int:
    return sum(1 for r in hs.requests if r.endpoint in WRITE_ENDPOINTS)


@pytest.mark.parametrize("version", VERSIONS)
def test_revert_of_a_create_restores_exactly_the_state_before(request, hubspot_conn, tmp_path, version):
    hs = hubspot_conn
    label = hs.add_label("contacts", "companies", "Former employer")
    seed(hs, [("1", "101"), ("3", "103")], UNLABELED)  # unlabeled before: only the label may go
    seed(hs, [("3", "103")], PRIMARY)
    seed(hs, [("1", "999")], UNLABELED)  # not named by the input: never touched
    before = stored(hs)
    hs.reset_stats()
    pairs = [["1", "101"], ["2", "102"], ["3", "103"], ["2", "102"]]
    state, raw = run_task(
        request,
        BatchCreateAssociationsOperator,
        "_create",
        pairs=pairs,
        association_label="Former employer",
        ledger_path=str(tmp_path / "ledger"),
    )
    assert state == "success"
    record = BatchRecord.from_xcom(raw)
    assert record.ledger_reads == 1 and record.ledger_path == str(tmp_path / "ledger")
    assert raw["ledgerReads"] == 1
    # HubSpot added the unlabeled type with the label on the pair that had nothing.
    assert ("2", "102", "HUBSPOT_DEFINED", UNLABELED) in stored(hs)
    entries = {(e.from_id, e.to_id): e for e in Ledger(str(tmp_path / "ledger")).entries()}
    assert set(entries) == {("1", "101"), ("2", "102"), ("3", "103")}
    assert {(t.category, t.type_id) for t in entries[("1", "101")].added} == {("USER_DEFINED", label)}
    assert {t.type_id for t in entries[("2", "102")].added} == {label, UNLABELED}
    assert not any(e.removed for e in entries.values())

    hs.reset_stats()
    state, raw = run_task(request, RevertAssociationsOperator, "_revert", ledger=str(tmp_path / "ledger"))
    assert state == "success"
    record = BatchRecord.from_xcom(raw)
    assert (record.operation, record.removed, record.restored, record.failed) == ("revert", 3, 0, 0)
    assert record.ledger_reads == 1
    assert stored(hs) == before
    assert ("101", "1") in {(f, t) for f, t, _, _ in hs.associations("companies", "contacts")}

    # A second revert reads the state already restored and writes nothing.
    hs.reset_stats()
    state, raw = run_task(request, RevertAssociationsOperator, "_again", ledger=str(tmp_path / "ledger"))
    assert state == "success"
    assert (raw["removed"], raw["restored"], raw["failed"]) == (0, 0, 0)
    assert writes(hs) == 0
    assert stored(hs) == before


@pytest.mark.parametrize("version", VERSIONS)
def test_revert_of_an_archive_by_label_restores_the_labels(request, hubspot_conn, tmp_path, version):
    hs = hubspot_conn
    label = hs.add_label("contacts", "companies", "Former employer")
    pairs = [("1", "101"), ("2", "102")]
    seed(hs, pairs, UNLABELED)
    seed(hs, pairs, label, "USER_DEFINED")
    seed(hs, pairs[:1], PRIMARY)
    before = stored(hs)
    state, raw = run_task(
        request,
        BatchArchiveAssociationsOperator,
        "_archive",
        pairs=[list(p) for p in [*pairs, ("3", "103")]],
        association_label="Former employer",
        ledger_path=str(tmp_path / "ledger"),
    )
    assert state == "success" and raw["ledgerReads"] == 1
    assert not any(type_id == label for _, _, _, type_id in stored(hs))
    entries = list(Ledger(str(tmp_path / "ledger")).entries())
    # 3 -> 103 had nothing to archive: nothing changed, nothing recorded.
    assert sorted((e.from_id, e.to_id) for e in entries) == pairs
    assert all({t.type_id for t in e.removed} == {label} and not e.added for e in entries)

    state, raw = run_task(
        request,
        RevertAssociationsOperator,
        "_revert",
        ledger=str(tmp_path / "ledger"),
        ledger_path=str(tmp_path / "revert-ledger"),
    )
    assert state == "success"
    assert (raw["removed"], raw["restored"], raw["failed"]) == (0, 2, 0)
    assert stored(hs) == before

    # The revert wrote its own ledger: reverting it archives the labels again.
    state, raw = run_task(
        request, RevertAssociationsOperator, "_undo", ledger=str(tmp_path / "revert-ledger")
    )
    assert state == "success" and raw["removed"] == 2
    assert stored(hs) == {a for a in before if a[3] != label}


@pytest.mark.parametrize("version", VERSIONS)
def test_revert_of_an_all_types_archive_brings_every_type_back(request, hubspot_conn, tmp_path, version):
    hs = hubspot_conn
    label = hs.add_label("contacts", "companies", "Former employer")
    pairs = [("1", "101"), ("2", "102"), ("3", "103")]
    seed(hs, pairs, UNLABELED)
    seed(hs, pairs[:2], PRIMARY)
    seed(hs, pairs[:1], label, "USER_DEFINED")
    before = stored(hs)
    state, raw = run_task(
        request,
        BatchArchiveAssociationsOperator,
        "_archive",
        pairs=[list(p) for p in pairs],
        all_types=True,
        ledger_path=str(tmp_path / "ledger"),
    )
    assert state == "success" and stored(hs) == set()
    state, raw = run_task(request, RevertAssociationsOperator, "_revert", ledger=str(tmp_path / "ledger"))
    assert state == "success" and raw["restored"] == 3
    assert stored(hs) == before


def test_dry_run_of_a_revert_sends_no_writes(request, hubspot_conn, tmp_path):
    hs = hubspot_conn
    state, _ = run_task(
        request,
        BatchCreateAssociationsOperator,
        "_create",
        pairs=[["1", "101"], ["2", "102"]],
        ledger_path=str(tmp_path / "ledger"),
    )
    assert state == "success"
    after = stored(hs)
    hs.reset_stats()
    state, raw = run_task(
        request, RevertAssociationsOperator, "_dry", ledger=str(tmp_path / "ledger"), dry_run=True
    )
    assert state == "success" and raw["dryRun"] is True
    assert writes(hs) == 0
    assert stored(hs) == after


def test_a_ledger_for_another_portal_is_refused(request, hubspot_conn, tmp_path):
    state, _ = run_task(
        request,
        BatchCreateAssociationsOperator,
        "_create",
        pairs=[["1", "101"]],
        ledger_path=str(tmp_path / "ledger"),
    )
    assert state == "success"
    meta_file = tmp_path / "ledger" / "ledger.json"
    meta_file.write_text(meta_file.read_text().replace('"portalId": null', '"portalId": "424242"'))
    hubspot_conn.reset_stats()
    state, _ = run_task(request, RevertAssociationsOperator, "_revert", ledger=str(tmp_path / "ledger"))
    assert state == "failed"
    assert writes(hubspot_conn) == 0


@pytest.mark.hubspot_standin(read_page_size=5)
def test_ledger_reads_are_one_per_thousand_from_ids_plus_pages(request, hubspot_conn, tmp_path):
    hs = hubspot_conn
    # Contact 1 already has 12 of the named companies: its answer comes in 3 pages of 5.
    had = [("1", str(500_000 + i)) for i in range(1, 13)]
    seed(hs, had, UNLABELED)
    hs.reset_stats()
    pairs = [[str(i), str(500_000 + i)] for i in range(1, 2_501)] + [list(p) for p in had[1:]]
    state, raw = run_task(
        request,
        BatchCreateAssociationsOperator,
        "_create",
        pairs=pairs,
        batch_size=500,
        ledger_path=str(tmp_path / "ledger"),
    )
    assert state == "success" and raw["created"] == 2_511
    reads = [r for r in hs.requests if r.endpoint == "batch_read"]
    # At most ceil(2,500 distinct from ids / 1,000) = 3 plus 2 further pages for contact 1; a page
    # request rides in the next chunk when there is one (page 2 goes with the third chunk), so 4.
    assert raw["ledgerReads"] == len(reads) == 4
    assert sum(r.n_inputs for r in reads) == 2_500 + 2
    assert max(r.n_inputs for r in reads) == 1_000
    assert set(Ledger(str(tmp_path / "ledger")).load_before()) == set(had)
    # Nothing changed for the pairs that had the association: the ledger holds the other 2,499.
    assert sum(1 for _ in Ledger(str(tmp_path / "ledger")).entries()) == 2_499
    # Every read went before the first write.
    endpoints = [r.endpoint for r in hs.requests]
    assert max(i for i, e in enumerate(endpoints) if e == "batch_read") < endpoints.index(
        "batch_associate_default"
    )


def context(try_number: int = 1):
    ti = SimpleNamespace(
        dag_id="d", run_id="manual__2026-01-01", task_id="create", map_index=-1, try_number=try_number
    )
    return {"ti": ti}


@pytest.mark.hubspot_standin(latency={"base_ms": 40})
def test_ledger_stays_exact_across_a_crash_and_resume(hubspot_conn, tmp_path):
    hs = hubspot_conn
    label = hs.add_label("contacts", "companies", "Former employer")
    pairs = [(str(i), str(100_000 + i)) for i in range(1, 401)]
    seed(hs, pairs[:200], UNLABELED)  # half had the unlabeled association before
    before = stored(hs)
    hs.reset_stats()
    kwargs = dict(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=[list(p) for p in pairs],
        association_type_id=label,
        association_category="USER_DEFINED",
        batch_size=10,
        max_concurrency=2,
        max_burst=2,
        checkpoint_path=str(tmp_path / "ck"),
        ledger_path=str(tmp_path / "ledger" / "{run_id}"),
    )
    first = BatchCreateAssociationsOperator(**kwargs)

    def kill_after_some_writes() -> None:
        while hs.stats.write_requests < 12:
            time.sleep(0.01)
        first.on_kill()

    threading.Thread(target=kill_after_some_writes, daemon=True).start()
    with pytest.raises(LoadStopped):
        first.execute(context())
    assert 0 < sum(r.n_inputs for r in hs.requests if r.endpoint == "batch_create") < 400
    record = BatchCreateAssociationsOperator(**kwargs).execute(context(try_number=2))
    assert record["resumed"] is True and record["created"] == 400
    # The before state was read once, by the first try; the second reused it.
    assert sum(1 for r in hs.requests if r.endpoint == "batch_read") == 1
    assert record["ledgerReads"] == 1
    ledger = str(tmp_path / "ledger" / "manual__2026-01-01")
    entries = list(Ledger(ledger).entries())
    assert len(entries) == 400
    added = {(e.from_id, e.to_id): {t.type_id for t in e.added} for e in entries}
    assert all(added[p] == {label} for p in pairs[:200])
    assert all(added[p] == {label, UNLABELED} for p in pairs[200:])

    revert = RevertAssociationsOperator(task_id="revert", ledger=ledger)
    raw = revert.execute({"ti": None})
    assert raw["removed"] == 400
    assert stored(hs) == before


def test_another_run_cannot_take_over_a_ledger_at_a_fixed_path(request, hubspot_conn, tmp_path):
    kwargs = dict(pairs=[["1", "101"]], ledger_path=str(tmp_path / "ledger"))
    state, _ = run_task(request, BatchCreateAssociationsOperator, "_first", **kwargs)
    assert state == "success"
    hubspot_conn.reset_stats()
    # The same input in another run would take the first run's before state for its own: refused.
    state, _ = run_task(request, BatchCreateAssociationsOperator, "_second", **kwargs)
    assert state == "failed"
    assert writes(hubspot_conn) == 0


@pytest.mark.hubspot_standin(latency={"base_ms": 40})
def test_a_revert_killed_midway_resumes_and_ends_exact(hubspot_conn, tmp_path):
    hs = hubspot_conn
    pairs = [(str(i), str(300_000 + i)) for i in range(1, 301)]
    seed(hs, pairs[:100], PRIMARY)  # these keep their Primary association through it all
    before = stored(hs)
    BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=[list(p) for p in pairs],
        ledger_path=str(tmp_path / "ledger"),
    ).execute(context())
    hs.reset_stats()
    kwargs = dict(
        task_id="revert",
        ledger=str(tmp_path / "ledger"),
        ledger_path=str(tmp_path / "revert-ledger"),
        checkpoint_path=str(tmp_path / "ck"),
        batch_size=10,
        max_concurrency=2,
        max_burst=2,
    )
    first = RevertAssociationsOperator(**kwargs)

    def kill_after_some_writes() -> None:
        while hs.stats.write_requests < 8:
            time.sleep(0.01)
        first.on_kill()

    threading.Thread(target=kill_after_some_writes, daemon=True).start()
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="revert", map_index=-1, try_number=1)
    with pytest.raises(LoadStopped):
        first.execute({"ti": ti})
    assert 0 < writes(hs) < 20
    raw = RevertAssociationsOperator(**kwargs).execute({"ti": ti})
    assert raw["removed"] == 200 and raw["failed"] == 0
    assert raw["resumed"] is True and 0 < raw["resumedSkipped"] < 200
    # The pairs' state was read once, by the first try, and saved in the revert's own ledger.
    assert sum(1 for r in hs.requests if r.endpoint == "batch_read") == 1
    assert stored(hs) == before
    # The revert's ledger says exactly what it removed: the 200 pairs that had nothing before.
    entries = list(Ledger(str(tmp_path / "revert-ledger")).entries())
    assert len(entries) == 200 and all(e.after == frozenset() for e in entries)
