"""Phase 2 of the Celery + S3 end-to-end test: a mirror sync with its state on S3, run on two workers.

Why a module of its own: phase 1 (the load, the kill, the resume) fills ``test_celery_s3.py``; the
sync needs its own DAG, inputs, expectations and checks, which read better apart.

What it does, in the cluster phase 1 leaves behind (one worker killed, one alive): a third worker
starts (its own folder, as a new machine), then ``SyncAssociationsOperator`` in mirror mode, with its
state and failed pairs on S3, runs twice from a desired state on S3, each run followed by
``HubSpotBatchStatusSensor(batch=sync.output)``. Between the runs the worker that ran the first sync
is stopped, so the second sync runs on another worker: what it needs from the first run (the
snapshot, the generation) can only come from S3.

Why a fresh object pair (deals -> companies, HubSpot's "Primary" label) rather than phase 1's
pairs: phase 1 writes the unlabeled contacts -> companies type, which mirror mode refuses to manage
(HubSpot cascades its removal to every label), and separate pairs keep the phases independent, so
the stand-in's final state of this pair is exactly what the two sync runs made it.

Run 1 sends everything (the snapshot starts empty); run 2 drops the first ``CHURN`` pairs and adds
``CHURN`` new ones, so it must send exactly ceil(creates / B) + ceil(removals / B) writes, where the
creates also hold run 1's refused pairs (a refused create is not in the snapshot: it is tried again).
"""

from __future__ import annotations

import contextlib
import json
import math
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from airflow_hubspot_assoc.testing import HubSpotStandIn
from tests.integration.airflow_cluster import AirflowCluster, ClusterError
from tests.integration.celery_cluster import CeleryWorker
from tests.s3_server import S3Server

SYNC_DAG_ID = "celery_s3_sync"
FROM_TYPE, TO_TYPE = "deals", "companies"
PRIMARY = ("HUBSPOT_DEFINED", 5)  # deals -> companies, HubSpot's labelled "Primary"
UNLABELED = ("HUBSPOT_DEFINED", 341)  # deals -> companies, HubSpot's default association
SYNC_BATCH = 100
DESIRED, CHURN = 1200, 150
SYNC_WRITES = frozenset({"batch_create", "batch_labels_archive", "batch_archive"})
#: Keys under the bucket (phase 1 uses ``in/`` and ``state/``).
DESIRED_KEY, STATE_KEY, FAILED_KEY = "sync/desired.csv", "sync/state", "sync/failed"

Pair = tuple[str, str]


def pair(n: int) -> Pair:
    """The n-th pair of the desired state; companies are shared by about two deals each."""
    return str(3_000_000_000 + n), str(2_100_000_000 + n % 700)


def sync_dag_source(url: Callable[[str], str], pool: str) -> str:
    """The sync DAG: read the whole desired state from S3, mirror it, confirm with the sensor.

    It is unpaused on creation, so the test only has to trigger it (an ``airflow`` CLI call costs
    tens of seconds on two busy cores)."""
    return textwrap.dedent(
        f'''
        """Celery + S3 e2e, phase 2: a mirror sync with its state on S3, then the sensor."""

        from __future__ import annotations

        import pendulum
        from airflow.sdk import DAG

        from airflow_hubspot_assoc.operators.sync import SyncAssociationsOperator
        from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

        with DAG(
            "{SYNC_DAG_ID}",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            catchup=False,
            max_active_runs=1,
            is_paused_upon_creation=False,
            tags=["e2e"],
        ):
            sync = SyncAssociationsOperator(
                task_id="sync",
                from_object_type="{FROM_TYPE}",
                to_object_type="{TO_TYPE}",
                association_type_id={PRIMARY[1]},
                pairs_path="{url(DESIRED_KEY)}",
                state_path="{url(STATE_KEY)}",
                failed_pairs_path="{url(FAILED_KEY)}/{{{{ run_id }}}}.jsonl",
                mode="mirror",
                max_removal_ratio=0.2,
                max_failed_ratio=0.2,
                batch_size={SYNC_BATCH},
                pool="{pool}",
            )
            HubSpotBatchStatusSensor(
                task_id="confirm", batch=sync.output, poke_interval=2, timeout=300, pool="{pool}"
            )
        '''
    )


def upload_desired(s3: S3Server, bucket: str, numbers: range) -> list[Pair]:
    """Replace the desired state on S3 (the whole table, as a nightly export would); return it."""
    pairs = [pair(n) for n in numbers]
    s3.write(bucket, DESIRED_KEY, "from_id,to_id\n" + "".join(f"{f},{t}\n" for f, t in pairs))
    return pairs


@contextlib.contextmanager
def extra_worker(cluster: AirflowCluster, folder: Path, concurrency: int = 4) -> Iterator[CeleryWorker]:
    """Start one more Celery worker with a folder of its own (a new machine); stop it at exit."""
    worker = CeleryWorker(folder.name, folder)
    try:
        worker.start(cluster.env, concurrency)
        yield worker
    finally:
        worker.stop()


def trigger(cluster: AirflowCluster, run_id: str) -> None:
    """Trigger a run through the REST API (the CLI would import all of Airflow first)."""
    cluster.api("POST", f"/api/v2/dags/{SYNC_DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None})


def run_once(cluster: AirflowCluster, hs: HubSpotStandIn, run_id: str) -> dict[str, Any]:
    """Trigger a run, wait for it; return its state, where its sync ran, its record and its writes."""
    started = time.time()
    trigger(cluster, run_id)
    state = cluster.wait_for_run(SYNC_DAG_ID, run_id, timeout=240, poll=1.0)
    ended = time.time()
    writes: dict[str, int] = {}
    for r in hs.requests:
        if r.endpoint in SYNC_WRITES and started <= r.started <= ended:
            writes[r.endpoint] = writes.get(r.endpoint, 0) + 1
    return {"run_id": run_id, "state": state, "writes": writes, "s": round(ended - started, 1)}


def ran_on(workers: list[CeleryWorker], run_id: str) -> list[str]:
    """The workers that hold a log of the run's sync task (unmapped: no ``map_index=`` folder, so
    not ``CeleryWorker.task_logs``)."""
    folder = f"dag_id={SYNC_DAG_ID}/run_id={run_id}/task_id=sync"
    return [w.name for w in workers if any((w.log_folder / folder).glob("attempt=*.log"))]


def expected_runs(hs: HubSpotStandIn, first: list[Pair], second: list[Pair]) -> list[dict[str, Any]]:
    """What each run must report and send, from the stand-in's own idea of which records exist."""

    def exists(p: Pair) -> bool:
        return hs.record_exists(FROM_TYPE, p[0]) and hs.record_exists(TO_TYPE, p[1])

    kept1 = {p for p in first if exists(p)}
    creates2 = set(second) - kept1
    removals2 = kept1 - set(second)
    kept2 = {p for p in second if exists(p)}
    return [
        {
            "created": len(kept1),
            "removed": 0,
            "unchanged": 0,
            "failed": {p for p in first if not exists(p)},
            "writes": {"batch_create": math.ceil(len(first) / SYNC_BATCH)},
            "generation": 1,
            "snapshot": kept1,
        },
        {
            "created": len(creates2 & kept2),
            "removed": len(removals2),
            "unchanged": len(set(second) & kept1),
            "failed": creates2 - kept2,
            "writes": {
                "batch_create": math.ceil(len(creates2) / SYNC_BATCH),
                "batch_labels_archive": math.ceil(len(removals2) / SYNC_BATCH),
            },
            "generation": 2,
            "snapshot": kept2,
        },
    ]


def check_run(
    cluster: AirflowCluster, s3: S3Server, bucket: str, run: dict[str, Any], want: dict[str, Any]
) -> dict[str, Any]:
    """One run's record, sensor, writes and failed pairs on S3 against ``want``; return its figures."""
    run_id = run["run_id"]

    def context() -> str:
        return f"\nrun: {run}\n{cluster.diagnostics(SYNC_DAG_ID, run_id)}"

    assert run["state"] == "success", context()
    record = cluster.xcom(SYNC_DAG_ID, run_id, "sync")
    got = {k: record[k] for k in ("created", "removed", "unchanged", "generation", "snapshotPairs", "failed")}
    assert got == {
        "created": want["created"],
        "removed": want["removed"],
        "unchanged": want["unchanged"],
        "generation": want["generation"],
        "snapshotPairs": len(want["snapshot"]),
        "failed": len(want["failed"]),
    }, f"{got}{context()}"
    assert run["writes"] == want["writes"], f"writes {run['writes']} != {want['writes']}{context()}"
    confirmed = cluster.xcom(SYNC_DAG_ID, run_id, "confirm")
    assert confirmed["status"] == "CONFIRMED", f"confirm: {confirmed}{context()}"
    failed_key = f"{FAILED_KEY}/{run_id}.jsonl"
    entries = [json.loads(line) for line in s3.read(bucket, failed_key).splitlines() if line.strip()]
    assert want["failed"], "no refused pair was exercised"
    assert {(e["from_id"], e["to_id"]) for e in entries} == want["failed"], f"{entries[:3]}{context()}"
    assert len(entries) == len(want["failed"]), context()
    assert all(e["operation"] == "create" and e["category"] == "VALIDATION_ERROR" for e in entries), entries
    assert record["failedPairsPath"].endswith(failed_key), record["failedPairsPath"]
    return {
        "writes": sum(run["writes"].values()),
        "writes_by_endpoint": run["writes"],
        "created": record["created"],
        "removed": record["removed"],
        "failed": record["failed"],
        "snapshot_pairs": record["snapshotPairs"],
        "generation": record["generation"],
        "run_s": run["s"],
    }


def run_sync_phase(
    cluster: AirflowCluster,
    workers: list[CeleryWorker],
    s3: S3Server,
    hs: HubSpotStandIn,
    bucket: str,
    disk_check: Callable[[CeleryWorker], list[str]],
) -> dict[str, Any]:
    """Run the sync twice, the second time on another worker; check everything; return the figures.

    ``workers`` are phase 1's (one of them killed); ``disk_check`` lists what a worker left on its
    disk besides logs, which must be nothing."""
    started = time.monotonic()
    alive = [w for w in workers if w.alive()]
    if not alive:
        raise ClusterError("phase 2 needs a live worker from phase 1")
    first = upload_desired(s3, bucket, range(DESIRED))
    second_numbers = range(CHURN, DESIRED + CHURN)
    with extra_worker(cluster, workers[0].folder.parent / "worker-c") as fresh:
        cluster.wait_for_dag(SYNC_DAG_ID)
        run1 = run_once(cluster, hs, "celery_s3_sync_1")
        fresh.wait_ready()
        pool = [*alive, fresh]
        placed1 = ran_on(pool, run1["run_id"])
        assert len(placed1) == 1, f"run 1's sync ran on {placed1}"
        first_worker = next(w for w in pool if w.name == placed1[0])
        first_worker.stop()  # the second run must find what it needs on S3, not on this disk
        assert not first_worker.alive(), f"{first_worker.name} still runs"
        second = upload_desired(s3, bucket, second_numbers)
        run2 = run_once(cluster, hs, "celery_s3_sync_2")
        placed2 = ran_on(pool, run2["run_id"])
        want = expected_runs(hs, first, second)
        figures1 = check_run(cluster, s3, bucket, run1, want[0])
        figures2 = check_run(cluster, s3, bucket, run2, want[1])
        assert placed2 and placed2 != placed1, f"run 2's sync ran on {placed2}, run 1's on {placed1}"
        stored = hs.associations(FROM_TYPE, TO_TYPE)
        # HubSpot adds a pair's unlabeled type with its first label and keeps it when the label is
        # archived: every pair either run created keeps it, only the label follows the desired state.
        expected = {(f, t, *PRIMARY) for f, t in want[1]["snapshot"]}
        expected |= {(f, t, *UNLABELED) for f, t in want[0]["snapshot"] | want[1]["snapshot"]}
        assert stored == expected, (
            f"{len(stored)} stored, {len(expected)} expected: unexpected {sorted(stored - expected)[:5]}, "
            f"missing {sorted(expected - stored)[:5]}"
        )
        prefix = f"{STATE_KEY}/"
        assert s3.keys(bucket, prefix) == [
            f"{prefix}snapshot-00000001.bin",
            f"{prefix}snapshot-00000002.bin",
            f"{prefix}state.json",
        ], s3.keys(bucket, prefix)
        pointer = json.loads(s3.read(bucket, f"{prefix}state.json"))
        assert (pointer["generation"], pointer["snapshot"]) == (2, "snapshot-00000002.bin"), pointer
        for worker in pool:
            assert disk_check(worker) == [], f"{worker.name} wrote to its disk: {disk_check(worker)}"
    return {
        "run1": {**figures1, "worker": placed1[0]},
        "run2": {**figures2, "worker": placed2[0]},
        "phase_s": round(time.monotonic() - started, 1),
    }
