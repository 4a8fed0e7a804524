"""SyncAssociationsOperator through real Airflow (``dag.test()``) against the stand-in over HTTP: only
the changes are sent, the snapshot advances by what HubSpot accepted, and every refusal comes before
any write."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest
import requests
from airflow.sdk import DAG

from airflow_hubspot_assoc.load import LoadStopped
from airflow_hubspot_assoc.operators.sync import SyncAssociationsOperator
from airflow_hubspot_assoc.record import BatchRecord
from airflow_hubspot_assoc.sync.snapshot import read_snapshot
from airflow_hubspot_assoc.sync.state import SyncState
from tests.helpers import run_dag, task_results, task_states, write_csv

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PRIMARY = 1  # contacts -> companies, HubSpot's labelled "Primary"
UNLABELED = 279
WRITES = ("batch_create", "batch_labels_archive", "batch_archive")


def dag_id(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:200]


def pairs_of(start: int, stop: int) -> list[tuple[int, int]]:
    return [(i, 100_000 + i) for i in range(start, stop)]


def sync(request, hs, day: int, pairs_path: Path, state: Path, task_id: str = "sync", **kwargs):
    """Run the operator alone in the DAG for ``day`` (a run of its own); return (state, raw record)."""
    kwargs.setdefault("association_type_id", PRIMARY)
    kwargs.setdefault("lease_settle_seconds", 0.0)
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        SyncAssociationsOperator(
            task_id=task_id,
            from_object_type="contacts",
            to_object_type="companies",
            pairs_path=str(pairs_path),
            state_path=str(state),
            **kwargs,
        )
    hs.reset_stats()
    dag_run = run_dag(dag, logical_date=START.add(days=day))
    return task_states(dag_run)[task_id], task_results(dag_run).get(task_id)


def stored(hs) -> set[tuple[int, int]]:
    return {
        (int(f), int(t))
        for f, t, _, type_id in hs.associations("contacts", "companies")
        if type_id == PRIMARY
    }


def writes(hs) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in hs.requests:
        if r.endpoint in WRITES:
            counts[r.endpoint] = counts.get(r.endpoint, 0) + 1
    return counts


def snapshot_pairs(state: Path) -> set[tuple[int, int, int]]:
    pointer = SyncState(str(state), "reader").read_pointer()
    triples, _ = read_snapshot(str(state / pointer.snapshot), state.parent / "read")
    return set(triples)


def test_first_run_creates_everything_and_a_second_run_sends_nothing(request, hubspot_conn, tmp_path):
    desired = pairs_of(1, 251)
    path = write_csv(tmp_path / "pairs.csv", desired)
    state, raw = sync(request, hubspot_conn, 0, path, tmp_path / "state")
    assert state == "success"
    record = BatchRecord.from_xcom(raw)
    assert (record.operation, record.created, record.removed, record.failed) == ("sync", 250, 0, 0)
    assert raw["planned"] == {"creates": 250, "removals": 0}
    assert (raw["unchanged"], raw["snapshotPairs"], raw["reconciled"], raw["generation"]) == (0, 250, 0, 1)
    assert writes(hubspot_conn) == {"batch_create": 3}
    assert stored(hubspot_conn) == set(desired)
    assert len(snapshot_pairs(tmp_path / "state")) == 250

    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state")
    assert state == "success"
    assert (raw["created"], raw["removed"], raw["unchanged"], raw["generation"]) == (0, 0, 250, 2)
    assert hubspot_conn.stats.write_requests == 0
    assert "batch_read" not in {r.endpoint for r in hubspot_conn.requests}
    history = json.loads((tmp_path / "state" / "state.json").read_text())["history"]
    assert [h["created"] for h in history] == [250, 0]
    # no lease, run folder or old snapshot is left behind
    # nothing failed: no failed-pairs file either
    assert raw["failedPairsPath"] is None
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
        "snapshot-00000001.bin",
        "snapshot-00000002.bin",
        "state.json",
    ]


@pytest.mark.parametrize("mode", ["upsert", "mirror"])
def test_churn_sends_exactly_the_changes(request, hubspot_conn, tmp_path, mode):
    day0 = pairs_of(1, 1001)
    path = write_csv(tmp_path / "day0.csv", day0)
    assert sync(request, hubspot_conn, 0, path, tmp_path / "state", mode=mode)[0] == "success"
    # 150 pairs leave, 230 arrive
    day1 = pairs_of(151, 1001) + pairs_of(5001, 5231)
    path = write_csv(tmp_path / "day1.csv", day1)
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state", mode=mode, max_removal_ratio=0.2)
    assert state == "success"
    removals = 150 if mode == "mirror" else 0
    assert (raw["created"], raw["removed"], raw["unchanged"]) == (230, removals, 850)
    assert raw["planned"] == {"creates": 230, "removals": removals}
    expected_writes = {"batch_create": math.ceil(230 / 100)}
    if removals:
        expected_writes["batch_labels_archive"] = math.ceil(150 / 100)
    assert writes(hubspot_conn) == expected_writes
    assert hubspot_conn.stats.write_requests == sum(expected_writes.values())
    final = set(day1) if mode == "mirror" else set(day0) | set(day1)
    assert stored(hubspot_conn) == final
    assert {(f, t) for f, t, _ in snapshot_pairs(tmp_path / "state")} == final
    assert raw["snapshotPairs"] == len(final)


def test_removal_guard_fails_before_any_write(request, hubspot_conn, tmp_path):
    path = write_csv(tmp_path / "day0.csv", pairs_of(1, 101))
    assert sync(request, hubspot_conn, 0, path, tmp_path / "state", mode="mirror")[0] == "success"
    path = write_csv(tmp_path / "day1.csv", pairs_of(51, 151))  # 50 go: half of the snapshot
    state, _ = sync(request, hubspot_conn, 1, path, tmp_path / "state", mode="mirror")
    assert state == "failed"
    assert hubspot_conn.stats.write_requests == 0
    assert stored(hubspot_conn) == set(pairs_of(1, 101))
    op = SyncAssociationsOperator(
        task_id="sync",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(path),
        state_path=str(tmp_path / "state"),
        association_type_id=PRIMARY,
        mode="mirror",
        max_removals=10,
        max_removal_ratio=None,
    )
    with pytest.raises(
        Exception, match=r"50 pairs would be removed \(50.0% of the 100 pairs.*max_removals=10"
    ):
        op.execute({})
    assert hubspot_conn.stats.write_requests == 0
    # the state did not move, and no plan was saved for a retry to pick up
    assert json.loads((tmp_path / "state" / "state.json").read_text())["generation"] == 1
    assert not list((tmp_path / "state").glob("runs/*/plan.json"))
    # the export is fixed and the task retried: the fixed input is what counts
    write_csv(tmp_path / "day1.csv", pairs_of(6, 106))
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state", mode="mirror")
    assert (state, raw["created"], raw["removed"]) == ("success", 5, 5)


def test_mirror_refuses_the_unlabeled_type_without_all_types(request, hubspot_conn, tmp_path):
    path = write_csv(tmp_path / "day0.csv", pairs_of(1, 11))
    state, _ = sync(
        request, hubspot_conn, 0, path, tmp_path / "state", mode="mirror", association_type_id=UNLABELED
    )
    assert state == "failed"
    assert hubspot_conn.stats.write_requests == 0
    state, raw = sync(
        request,
        hubspot_conn,
        1,
        path,
        tmp_path / "state",
        mode="mirror",
        association_type_id=UNLABELED,
        all_types=True,
    )
    assert state == "success" and raw["created"] == 10


def test_plan_then_apply_and_a_stale_plan_is_refused(request, hubspot_conn, tmp_path):
    path = write_csv(tmp_path / "day0.csv", pairs_of(1, 101))
    assert sync(request, hubspot_conn, 0, path, tmp_path / "state", mode="mirror")[0] == "success"
    path = write_csv(tmp_path / "day1.csv", pairs_of(6, 131))
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state", mode="mirror", dry_run=True)
    assert state == "success"
    assert hubspot_conn.stats.write_requests == 0
    assert raw["dryRun"] is True and raw["planned"] == {"creates": 30, "removals": 5}
    assert (raw["created"], raw["removed"], raw["generation"], raw["snapshotPairs"]) == (0, 0, 1, 100)
    plan_path = raw["planPath"]
    assert plan_path.startswith(str(tmp_path / "state" / "plans"))
    manifest = json.loads(Path(plan_path).read_text())
    assert (manifest["stateGeneration"], manifest["creates"]["count"], manifest["removals"]["count"]) == (
        1,
        30,
        5,
    )

    # the input changes after the plan was made: the plan is applied as it was made
    write_csv(tmp_path / "day1.csv", pairs_of(1, 2))
    state, raw = sync(request, hubspot_conn, 2, path, tmp_path / "state", mode="mirror", plan_path=plan_path)
    assert state == "success"
    assert (raw["created"], raw["removed"], raw["generation"], raw["planPath"]) == (30, 5, 2, plan_path)
    assert writes(hubspot_conn) == {"batch_create": 1, "batch_labels_archive": 1}
    assert stored(hubspot_conn) == set(pairs_of(6, 131))

    # applying it again: the state moved on, so it is refused before any write
    state, _ = sync(request, hubspot_conn, 3, path, tmp_path / "state", mode="mirror", plan_path=plan_path)
    assert state == "failed"
    assert hubspot_conn.stats.write_requests == 0
    op = SyncAssociationsOperator(
        task_id="sync",
        from_object_type="contacts",
        to_object_type="companies",
        state_path=str(tmp_path / "state"),
        plan_path=plan_path,
        lease_settle_seconds=0.0,
    )
    with pytest.raises(Exception, match="generation 1 of the sync state, which is now at generation 2"):
        op.execute({})

    # the next dry run deletes the plan that can no longer apply; its own stays
    state, raw = sync(request, hubspot_conn, 4, path, tmp_path / "state", mode="mirror", dry_run=True)
    assert state == "success" and raw["planPath"] != plan_path
    assert not Path(plan_path).exists() and Path(raw["planPath"]).exists()
    assert sorted(p.name for p in (tmp_path / "state" / "plans").iterdir()) == sorted(
        Path(raw["planPath"]).name.removesuffix(".json") + suffix
        for suffix in (".json", "-creates.bin", "-removals.bin", "-forget.bin")
    )


def archive_by_hand(hs, pairs, type_id=PRIMARY) -> None:
    body = {
        "inputs": [
            {
                "from": {"id": str(f)},
                "to": {"id": str(t)},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            }
            for f, t in pairs
        ]
    }
    response = requests.post(
        f"{hs.url}/crm/v4/associations/contacts/companies/batch/labels/archive",
        json=body,
        headers={"Authorization": f"Bearer {hs.token}"},
        timeout=10,
    )
    assert response.status_code < 300, response.text


def test_reconcile_repairs_a_pair_removed_in_hubspot_by_hand(request, hubspot_conn, tmp_path):
    desired = pairs_of(1, 1501)  # two batch reads of from-ids
    path = write_csv(tmp_path / "pairs.csv", desired)
    assert sync(request, hubspot_conn, 0, path, tmp_path / "state")[0] == "success"
    archive_by_hand(hubspot_conn, [(7, 100_007), (1200, 101_200)])
    assert len(stored(hubspot_conn)) == 1498
    # without reconcile the snapshot alone says nothing changed
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state")
    assert (state, raw["created"], hubspot_conn.stats.write_requests) == ("success", 0, 0)
    state, raw = sync(request, hubspot_conn, 2, path, tmp_path / "state", reconcile=True)
    assert state == "success"
    assert (raw["created"], raw["unchanged"], raw["reconciled"]) == (2, 1498, 2)
    assert writes(hubspot_conn) == {"batch_create": 1}
    assert sum(1 for r in hubspot_conn.requests if r.endpoint == "batch_read") == 2
    assert stored(hubspot_conn) == set(desired)


@pytest.mark.hubspot_standin(missing_records={"companies": ["100007"]})
def test_failed_pairs_are_retried_the_next_day(request, hubspot_conn, tmp_path):
    desired = pairs_of(1, 21)
    path = write_csv(tmp_path / "pairs.csv", desired)
    state, raw = sync(request, hubspot_conn, 0, path, tmp_path / "state", max_failed_ratio=0.5)
    assert state == "success"
    assert (raw["created"], raw["failed"], raw["snapshotPairs"]) == (19, 1, 19)
    failed = [json.loads(line) for line in Path(raw["failedPairsPath"]).read_text().splitlines()]
    assert [(f["from_id"], f["to_id"], f["operation"]) for f in failed] == [("7", "100007", "create")]
    assert "100007" in failed[0]["message"]
    hubspot_conn.set_missing_records("companies", [])
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state")
    assert state == "success"
    assert (raw["created"], raw["failed"], raw["unchanged"], raw["snapshotPairs"]) == (1, 0, 19, 20)
    assert hubspot_conn.stats.write_requests == 1
    assert stored(hubspot_conn) == set(desired)


def context(run: str = "manual__2026-01-02"):
    return {"ti": SimpleNamespace(dag_id="d", run_id=run, task_id="sync", map_index=-1, try_number=1)}


@pytest.mark.hubspot_standin(latency={"base_ms": 30})
def test_a_crash_mid_sync_resumes_and_ends_in_the_same_snapshot(hubspot_conn, tmp_path):
    day0, day1 = pairs_of(1, 301), pairs_of(101, 701)  # 400 creates, 100 removals
    kwargs = dict(
        task_id="sync",
        from_object_type="contacts",
        to_object_type="companies",
        association_type_id=PRIMARY,
        mode="mirror",
        max_removal_ratio=0.5,
        batch_size=10,
        max_concurrency=2,
        max_burst=2,
        lease_settle_seconds=0.0,
    )
    results = {}
    for name in ("crash", "calm"):
        state = str(tmp_path / name)
        SyncAssociationsOperator(
            pairs_path=str(write_csv(tmp_path / "day0.csv", day0)), state_path=state, **kwargs
        ).execute(context("day0"))
        path = str(write_csv(tmp_path / "day1.csv", day1))
        if name == "crash":
            hubspot_conn.reset_stats()
            first = SyncAssociationsOperator(pairs_path=path, state_path=state, **kwargs)

            def kill_after_some_writes(op=first) -> None:
                while hubspot_conn.stats.write_requests < 12:
                    time.sleep(0.01)
                op.on_kill()

            threading.Thread(target=kill_after_some_writes, daemon=True).start()
            with pytest.raises(LoadStopped):
                first.execute(context())
            assert json.loads((tmp_path / name / "state.json").read_text())["generation"] == 1
            # the input changes before the retry: the retry applies what the first try planned
            write_csv(tmp_path / "day1.csv", pairs_of(1, 2))
            record = SyncAssociationsOperator(pairs_path=path, state_path=state, **kwargs).execute(context())
            assert record["resumed"] is True and record["resumedSkipped"] > 0
            write_csv(tmp_path / "day1.csv", day1)
            sent = sum(r.n_inputs for r in hubspot_conn.requests if r.endpoint == "batch_create")
            assert 400 <= sent <= 400 + 2 * 2 * 10
        else:
            record = SyncAssociationsOperator(pairs_path=path, state_path=state, **kwargs).execute(context())
        assert (record["created"], record["removed"], record["generation"]) == (400, 100, 2)
        results[name] = snapshot_pairs(tmp_path / name)
        # the run's own plan and checkpoints are gone once it committed
        assert not (tmp_path / name / "runs").exists()
    assert results["crash"] == results["calm"]
    assert {(f, t) for f, t, _ in results["crash"]} == set(day1)
    assert stored(hubspot_conn) == set(day1)


def test_a_second_run_on_the_same_state_fails_before_any_write(request, hubspot_conn, tmp_path):
    path = write_csv(tmp_path / "pairs.csv", pairs_of(1, 51))
    other = SyncState(str(tmp_path / "state"), "another-dag--run--sync--unmapped", settle_seconds=0.0)
    other.acquire()
    state, _ = sync(request, hubspot_conn, 0, path, tmp_path / "state")
    assert state == "failed"
    assert hubspot_conn.stats.write_requests == 0
    op = SyncAssociationsOperator(
        task_id="sync",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(path),
        state_path=str(tmp_path / "state"),
        association_type_id=PRIMARY,
    )
    with pytest.raises(
        Exception, match=r"Another sync run \(another-dag--run--sync--unmapped\) holds the lease"
    ):
        op.execute(context())
    other.release()
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state")
    assert (state, raw["created"]) == ("success", 50)


@pytest.mark.hubspot_standin(latency={"base_ms": 20})
def test_two_runs_started_together_one_writes_and_the_other_fails_before_writing(hubspot_conn, tmp_path):
    path = str(write_csv(tmp_path / "pairs.csv", pairs_of(1, 201)))
    outcomes: dict[str, object] = {}

    def run(name: str) -> None:
        op = SyncAssociationsOperator(
            task_id="sync",
            from_object_type="contacts",
            to_object_type="companies",
            pairs_path=path,
            state_path=str(tmp_path / "state"),
            association_type_id=PRIMARY,
            lease_settle_seconds=0.5,
        )
        try:
            outcomes[name] = op.execute(context(name))
        except Exception as err:
            outcomes[name] = err

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes.values() if isinstance(o, dict)]
    lost = [o for o in outcomes.values() if not isinstance(o, dict)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert "holds the lease" in str(lost[0])
    assert won[0]["created"] == 200
    assert sum(r.n_inputs for r in hubspot_conn.requests if r.endpoint == "batch_create") == 200


def test_the_sensor_confirms_created_pairs_present_and_removed_pairs_gone(request, hubspot_conn, tmp_path):
    from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

    path = write_csv(tmp_path / "day0.csv", pairs_of(1, 41))
    assert sync(request, hubspot_conn, 0, path, tmp_path / "state", mode="mirror")[0] == "success"
    path = write_csv(tmp_path / "day1.csv", pairs_of(3, 43))
    # a DAG id of its own: Airflow 3.1 keeps the first serialized version of a DAG id for the run
    with DAG(f"{dag_id(request)}_confirm", schedule=None, start_date=START, catchup=False) as dag:
        op = SyncAssociationsOperator(
            task_id="sync",
            from_object_type="contacts",
            to_object_type="companies",
            pairs_path=str(path),
            state_path=str(tmp_path / "state"),
            association_type_id=PRIMARY,
            mode="mirror",
            lease_settle_seconds=0.0,
        )
        HubSpotBatchStatusSensor(task_id="confirm", batch=op.output, poke_interval=0.2, timeout=30)
    dag_run = run_dag(dag, logical_date=START.add(days=1))
    assert set(task_states(dag_run).values()) == {"success"}
    raw = task_results(dag_run)["sync"]
    assert {(p["from"], p["to"]) for p in raw["removedSample"]} == {("1", "100001"), ("2", "100002")}
    assert {(p["from"], p["to"]) for p in raw["sample"]} == {("41", "100041"), ("42", "100042")}
    assert task_results(dag_run)["confirm"]["status"] == "CONFIRMED"

    # a removed pair that HubSpot still shows keeps the sensor waiting
    hubspot_conn.reset_stats()
    from tests.testing.support import call, create_inputs

    call(hubspot_conn, "v4", "batch_create", create_inputs([("1", "100001")], PRIMARY))
    sensor = HubSpotBatchStatusSensor(task_id="confirm", batch=raw, poke_interval=0.2, timeout=30)
    assert sensor.poke({}) is False
    archive_by_hand(hubspot_conn, [(1, 100_001)])
    assert sensor.poke({}).is_done


def test_a_deferred_sensor_confirms_a_syncs_removals_through_the_trigger(request, hubspot_conn, tmp_path):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor
    from airflow_hubspot_assoc.triggers.associations import HubSpotBatchStatusTrigger
    from tests.testing.support import call, create_inputs
    from tests.triggers.test_associations import run_trigger

    path = write_csv(tmp_path / "day0.csv", pairs_of(1, 41))
    assert sync(request, hubspot_conn, 0, path, tmp_path / "state", mode="mirror")[0] == "success"
    path = write_csv(tmp_path / "day1.csv", pairs_of(3, 43))
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state", mode="mirror")
    assert state == "success" and (raw["created"], raw["removed"]) == (2, 2)
    assert {(p["from"], p["to"]) for p in raw["removedSample"]} == {("1", "100001"), ("2", "100002")}
    # HubSpot not there yet: a removed pair still shows Primary, a created one does not show yet
    call(hubspot_conn, "v4", "batch_create", create_inputs([("1", "100001")], PRIMARY))
    archive_by_hand(hubspot_conn, [(41, 100_041)])
    sensor = HubSpotBatchStatusSensor(
        task_id="confirm", batch=raw, poke_interval=0.2, timeout=30, deferrable=True
    )
    with pytest.raises(TaskDeferred) as caught:
        sensor.execute({})
    trigger = caught.value.trigger
    assert isinstance(trigger, HubSpotBatchStatusTrigger)
    _, kwargs = trigger.serialize()
    # the two outstanding pairs go to the trigger; the removed one is to be gone, not visible
    assert sorted(kwargs["pairs"]) == [["1", "100001", 0], ["41", "100041", 0]]
    assert [kwargs["pairs"][n][0] for n in kwargs["absent_rows"]] == ["1"]
    kwargs["deadline"] = time.time() + 0.6
    (event,) = run_trigger(HubSpotBatchStatusTrigger(**kwargs))
    assert event["status"] == "timeout"
    # the created pair showing is not enough: the removed one must be gone too
    call(hubspot_conn, "v4", "batch_create", create_inputs([("41", "100041")], PRIMARY))
    kwargs["deadline"] = time.time() + 0.6
    (event,) = run_trigger(HubSpotBatchStatusTrigger(**kwargs))
    assert event["status"] == "timeout" and "1 -> 100001" in event["message"]
    archive_by_hand(hubspot_conn, [(1, 100_001)])
    kwargs["deadline"] = time.time() + 30
    (event,) = run_trigger(HubSpotBatchStatusTrigger(**kwargs))
    assert event["status"] == "success" and event["confirmed"] == 4
    assert sensor.execute_complete({}, event)["status"] == "CONFIRMED"


def test_mirror_with_reconcile_removes_only_what_hubspot_still_shows(request, hubspot_conn, tmp_path):
    path = write_csv(tmp_path / "day0.csv", pairs_of(1, 101))
    assert sync(request, hubspot_conn, 0, path, tmp_path / "state", mode="mirror")[0] == "success"
    # by hand: two pairs that are about to leave the table, and one that stays in it
    archive_by_hand(hubspot_conn, [(1, 100_001), (2, 100_002), (50, 100_050)])
    path = write_csv(tmp_path / "day1.csv", pairs_of(6, 101))
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state", mode="mirror", reconcile=True)
    assert state == "success"
    # 50 is created again; 3, 4 and 5 are removed; 1 and 2 are already gone: forgotten, not sent
    assert (raw["created"], raw["removed"], raw["unchanged"], raw["reconciled"]) == (1, 3, 94, 1)
    assert writes(hubspot_conn) == {"batch_create": 1, "batch_labels_archive": 1}
    removal = next(r for r in hubspot_conn.requests if r.endpoint == "batch_labels_archive")
    assert removal.n_inputs == 3
    assert stored(hubspot_conn) == set(pairs_of(6, 101))
    assert {(f, t) for f, t, _ in snapshot_pairs(tmp_path / "state")} == set(pairs_of(6, 101))
