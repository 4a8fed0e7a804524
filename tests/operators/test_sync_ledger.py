"""A sync run's ledger (issue 15): through real Airflow (``dag.test()``) against the stand-in over HTTP,
a mirror sync with churn records exactly its creates and removals, reading before its first write
only the pairs it planned to touch; ``RevertAssociationsOperator`` on that ledger brings HubSpot back
to exactly what it showed before the run, also after a crash and a resumed try; and the next sync
after a revert does what the README says (its snapshot is not rewound)."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.ledger import Ledger
from airflow_hubspot_assoc.load import LoadStopped
from airflow_hubspot_assoc.operators.revert import RevertAssociationsOperator
from airflow_hubspot_assoc.operators.sync import SyncAssociationsOperator
from tests.helpers import dag_id, run_dag, task_results, task_states, write_csv
from tests.testing.support import call, create_inputs

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PRIMARY = 1  # contacts -> companies, labelled "Primary": the managed type
UNLABELED = 279


def pairs_of(start: int, stop: int) -> list[tuple[int, int]]:
    return [(i, 100_000 + i) for i in range(start, stop)]


def stored(hs) -> set[tuple[str, str, str, int]]:
    """Every association of every type: a revert must restore all of them, not only the managed one."""
    return set(hs.associations("contacts", "companies"))


def seed(hs, pairs, type_id: int) -> None:
    call(hs, "v4", "batch_create", create_inputs([(str(f), str(t)) for f, t in pairs], type_id))


def run_one(request, suffix: str, day: int, operator_class, **kwargs):
    """Run one operator alone in a DAG of its own; return (state, XCom record)."""
    with DAG(dag_id(request) + suffix, schedule=None, start_date=START, catchup=False) as dag:
        operator_class(task_id="task", **kwargs)
    dag_run = run_dag(dag, logical_date=START.add(days=day))
    return task_states(dag_run)["task"], task_results(dag_run).get("task")


def sync_kwargs(path, state, **kwargs):
    return {
        "from_object_type": "contacts",
        "to_object_type": "companies",
        "pairs_path": str(path),
        "state_path": str(state),
        "association_type_id": PRIMARY,
        "mode": "mirror",
        "lease_settle_seconds": 0.0,
        **kwargs,
    }


def endpoint_count(hs, name: str) -> int:
    return sum(1 for r in hs.requests if r.endpoint == name)


def test_a_mirror_sync_with_churn_and_a_ledger_reverts_to_exactly_the_state_before(
    request, hubspot_conn, tmp_path
):
    hs = hubspot_conn
    state_dir = tmp_path / "state"
    day0 = write_csv(tmp_path / "day0.csv", pairs_of(1, 41))
    assert (
        run_one(request, "_day0", 0, SyncAssociationsOperator, **sync_kwargs(day0, state_dir))[0] == "success"
    )
    # Before the run: 41 -> 100041 already has the unlabeled type (the create adds only Primary), 1 and
    # 2 also carry a label the sync does not manage (the removal of Primary must leave it), and 1 has
    # a pair the input never names (never touched).
    label = hs.add_label("contacts", "companies", "Billing contact")
    call(hs, "v4", "batch_create", create_inputs([("1", "100001"), ("2", "100002")], label, "USER_DEFINED"))
    seed(hs, [(41, 100_041)], UNLABELED)
    seed(hs, [(1, 999)], UNLABELED)
    before = stored(hs)
    hs.reset_stats()

    day1 = write_csv(tmp_path / "day1.csv", pairs_of(3, 43))  # 1, 2 leave; 41, 42 arrive
    ledger_template = str(tmp_path / "ledgers" / "{run_id}")
    state, raw = run_one(
        request,
        "_day1",
        1,
        SyncAssociationsOperator,
        **sync_kwargs(day1, state_dir, ledger_path=ledger_template),
    )
    assert state == "success"
    assert (raw["created"], raw["removed"], raw["unchanged"]) == (2, 2, 38)
    # The before read covers the planned pairs only: from ids 1, 2, 41, 42 -> one batch read.
    assert raw["ledgerReads"] == 1 and endpoint_count(hs, "batch_read") == 1
    (ledger,) = [str(p) for p in (tmp_path / "ledgers").iterdir()]
    assert raw["ledgerPath"] == ledger and "{run_id}" not in ledger
    meta = Ledger(ledger).meta()
    assert meta is not None and meta["operation"] == "sync" and meta["reads"] == 1
    entries = {(e.from_id, e.to_id): e for e in Ledger(ledger).entries()}
    assert set(entries) == {("1", "100001"), ("2", "100002"), ("41", "100041"), ("42", "100042")}
    assert {t.type_id for t in entries[("41", "100041")].added} == {PRIMARY}
    assert {t.type_id for t in entries[("42", "100042")].added} == {PRIMARY, UNLABELED}
    assert {t.type_id for t in entries[("1", "100001")].removed} == {PRIMARY}
    assert {t.type_id for t in entries[("1", "100001")].before} == {PRIMARY, UNLABELED, label}

    hs.reset_stats()
    state, raw = run_one(request, "_revert", 2, RevertAssociationsOperator, ledger=ledger)
    assert state == "success"
    assert (raw["operation"], raw["removed"], raw["restored"], raw["failed"]) == ("revert", 2, 2, 0)
    assert stored(hs) == before

    # The revert does not rewind the sync's snapshot (it still holds 3..42): the same input again
    # without reconcile finds nothing to change and sends nothing, so HubSpot stays reverted ...
    hs.reset_stats()
    state, raw = run_one(request, "_day2", 2, SyncAssociationsOperator, **sync_kwargs(day1, state_dir))
    assert state == "success" and (raw["created"], raw["removed"]) == (0, 0)
    assert hs.stats.write_requests == 0 and stored(hs) == before
    # ... and reconcile=True diffs against HubSpot: it creates again what the revert removed, but the
    # pairs the revert restored stay, since the snapshot no longer counts them as the sync's.
    state, raw = run_one(
        request, "_day3", 3, SyncAssociationsOperator, **sync_kwargs(day1, state_dir, reconcile=True)
    )
    assert state == "success" and (raw["created"], raw["removed"]) == (2, 0)
    primary = {(int(f), int(t)) for f, t, _, type_id in stored(hs) if type_id == PRIMARY}
    assert primary == set(pairs_of(1, 43))
    # A run on the input the reverted run started from puts the restored pairs back in the snapshot
    # (their creates are accepted), so the next run on the new input removes them again.
    assert (
        run_one(request, "_day4", 4, SyncAssociationsOperator, **sync_kwargs(day0, state_dir))[0] == "success"
    )
    state, raw = run_one(request, "_day5", 5, SyncAssociationsOperator, **sync_kwargs(day1, state_dir))
    assert state == "success" and (raw["created"], raw["removed"]) == (2, 2)
    primary = {(int(f), int(t)) for f, t, _, type_id in stored(hs) if type_id == PRIMARY}
    assert primary == set(pairs_of(3, 43))


def context(run_id: str):
    return {"ti": SimpleNamespace(dag_id="d", run_id=run_id, task_id="sync", map_index=-1, try_number=1)}


@pytest.mark.hubspot_standin(latency={"base_ms": 30})
def test_a_sync_crash_then_resume_with_a_ledger_still_reverts_exactly(hubspot_conn, tmp_path):
    hs = hubspot_conn
    kwargs = dict(
        task_id="sync",
        batch_size=10,
        max_concurrency=2,
        max_burst=2,
        max_removal_ratio=0.5,
        ledger_path=str(tmp_path / "ledgers" / "{run_id}"),
    )
    state_dir = tmp_path / "state"
    day0 = write_csv(tmp_path / "day0.csv", pairs_of(1, 301))
    SyncAssociationsOperator(**sync_kwargs(day0, state_dir, **kwargs)).execute(context("day0"))
    seed(hs, pairs_of(400, 501), UNLABELED)  # 100 of the pairs to create had the unlabeled type before
    before = stored(hs)
    hs.reset_stats()
    day1 = write_csv(tmp_path / "day1.csv", pairs_of(101, 701))  # 400 creates, 100 removals
    first = SyncAssociationsOperator(**sync_kwargs(day1, state_dir, **kwargs))

    def kill_after_some_writes() -> None:
        while hs.stats.write_requests < 12:
            time.sleep(0.01)
        first.on_kill()

    threading.Thread(target=kill_after_some_writes, daemon=True).start()
    with pytest.raises(LoadStopped):
        first.execute(context("day1"))
    assert json.loads((state_dir / "state.json").read_text())["generation"] == 1
    assert 0 < sum(r.n_inputs for r in hs.requests if r.endpoint == "batch_create") < 400
    record = SyncAssociationsOperator(**sync_kwargs(day1, state_dir, **kwargs)).execute(context("day1"))
    assert record["resumed"] is True and (record["created"], record["removed"]) == (400, 100)
    # 500 planned from ids -> one read, by the first try; the retry reused the saved before state.
    assert endpoint_count(hs, "batch_read") == 1 and record["ledgerReads"] == 1
    ledger = str(tmp_path / "ledgers" / "day1")
    entries = list(Ledger(ledger).entries())
    assert len(entries) == 500
    added = {(int(e.from_id), int(e.to_id)): {t.type_id for t in e.added} for e in entries}
    assert all(added[p] == {PRIMARY} for p in pairs_of(400, 501))
    assert all(added[p] == {PRIMARY, UNLABELED} for p in pairs_of(501, 701))

    # The task cleared and run again (same run): nothing to change, and its ledger is kept as it is.
    hs.reset_stats()
    again = SyncAssociationsOperator(**sync_kwargs(day1, state_dir, **kwargs)).execute(context("day1"))
    assert (again["created"], again["removed"], again["ledgerPath"], again["ledgerReads"]) == (
        0,
        0,
        ledger,
        1,
    )
    assert endpoint_count(hs, "batch_read") == 0 and len(list(Ledger(ledger).entries())) == 500

    raw = RevertAssociationsOperator(task_id="revert", ledger=ledger).execute({"ti": None})
    assert (raw["removed"], raw["restored"], raw["failed"]) == (400, 100, 0)
    assert stored(hs) == before
