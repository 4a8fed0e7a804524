"""End to end on the CeleryExecutor with everything on S3: two workers share one HubSpot app, one dies.

The parts are real: PostgreSQL (metadata database and Celery result backend), Redis (the broker),
Airflow's api-server, scheduler and dag-processor, two ``airflow celery worker`` processes with separate
folders (cwd, TMPDIR, task logs), ``moto`` as the S3 API reached through ``ObjectStoragePath`` and the
``aws_default`` connection, and the HubSpot stand-in with HubSpot's limit (R = 100 requests per 10 s)
and latency. See ``celery_cluster.py`` for how they are started and stopped.

Phase 1, the load: an 8-part CSV export on S3, one mapped create task per part (checkpoints and failed
pairs on S3, all in one pool), the mapped sensor after it. Once every part sends, the stand-in's
request log over a measurement window gives the aggregate throughput (against R x B / 10 s) and the
share of 429s; then one worker gets SIGKILL with its process group and its task processes, mid-load,
with checkpoints on S3. The scheduler notices the missing heartbeats, Airflow retries those tasks, the
surviving worker runs them and they resume from the checkpoints on S3. The rate is measured before the
kill, so the kill cannot perturb it, and the kill still lands mid-load.

Phase 2, in the same cluster after ``check_load`` (see ``celery_sync_phase.py``): a DAG of its own
with ``SyncAssociationsOperator`` in mirror mode, its state and failed pairs on S3, run twice (the
second time with churn, on another worker: a third one starts, the first run's worker is stopped),
each run followed by the sensor; exact writes, records, failed pairs and final state.

The figures go to stdout (shown with ``-rA``) and to ``test-artifacts/celery_s3.json``.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_hubspot_assoc.testing import HubSpotStandIn, LatencyConfig, RateLimitConfig, StandInConfig
from tests.integration.airflow_cluster import AirflowCluster, ClusterError
from tests.integration.celery_cluster import CeleryWorker, celery_cluster
from tests.integration.celery_sync_phase import SYNC_DAG_ID, run_sync_phase, sync_dag_source
from tests.integration.reliability_support import (
    API_ENDPOINTS,
    WRITE_ENDPOINTS,
    Expectation,
    expectation,
    write_pairs_csv,
)
from tests.s3_server import CONN_ID, S3Server, moto_s3_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(720)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DAG_ID = "celery_s3_load"
RUN_ID = "celery_s3_load_1"
BUCKET = "celery-e2e"
POOL, POOL_SLOTS = "hubspot_app", 8
PARTS, PER_PART, BATCH_SIZE = 8, 2000, 10
RATE, WINDOW_S = 100, 10.0
CEILING = RATE * BATCH_SIZE / WINDOW_S  # pairs per second one app can get through
#: The throughput window: four whole intervals, so that it can hold at most 4 x R requests however
#: the limiter places its sends in time (a span that is not a whole number of intervals can hold one
#: window's burst more or less than its share), and long enough that one slow interval on two busy
#: cores (the scheduler, PostgreSQL and eight task processes share them) does not decide the figure.
MEASURE_S = 4 * 10.0
#: What a try logs once it has read and validated its part, right before its first write.
SENDING = "before sending anything"
#: What a try's closing summary line holds (``COMPLETE: 600 pairs read, ...; N throttled (429)``).
SUMMARY = "pairs read,"
#: The window opens one interval after the last part started sending: by then every process has had
#: answers that show the others (a process's first request cannot know the window, and processes
#: that start within a second of each other meet only as the window fills). The 429s of that first
#: interval, and of the whole run, are reported beside the window's.
SETTLE_S = 10.0
HEARTBEAT_TIMEOUT_S = 20
OK_WRITE = frozenset({200, 201, 207})


def url(key: str) -> str:
    return f"s3://{CONN_ID}@{BUCKET}/{key}"


def dag_source() -> str:
    parts = [url(f"in/part-{n:05d}.csv") for n in range(PARTS)]
    failed, checkpoints = url("state/failed/{map_index}.jsonl"), url("state/checkpoints")
    return textwrap.dedent(
        f'''
        """Celery + S3 e2e: a sharded export on S3, one mapped create per part, then mapped sensors."""

        from __future__ import annotations

        from datetime import timedelta

        import pendulum
        from airflow.sdk import DAG

        from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
        from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

        with DAG(
            "{DAG_ID}",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            catchup=False,
            max_active_tasks=16,
            tags=["e2e"],
        ):
            create = BatchCreateAssociationsOperator.partial(
                task_id="create",
                from_object_type="contacts",
                to_object_type="companies",
                association_type_id=279,
                batch_size={BATCH_SIZE},
                max_failed_ratio=0.2,
                failed_pairs_path="{failed}",
                checkpoint_path="{checkpoints}",
                pool="{POOL}",
                retries=2,
                retry_delay=timedelta(seconds=2),
            ).expand(pairs_path={parts!r})
            HubSpotBatchStatusSensor.partial(
                task_id="confirm",
                verify="all",
                poke_interval=2,
                timeout=300,
                pool="{POOL}",
            ).expand(batch=create.output)
        '''
    )


def upload_export(s3: S3Server, folder: Path, hs: HubSpotStandIn) -> list[Expectation]:
    """Write the seeded parts, upload them to S3; return what each must end with."""
    s3.create_bucket(BUCKET)
    expected = []
    for part in range(PARTS):
        local = write_pairs_csv(
            folder / f"part-{part:05d}.csv", PER_PART, seed=part, from_base=(part + 1) * 10**7
        )
        s3.write(BUCKET, f"in/part-{part:05d}.csv", local.path.read_text())
        expected.append(expectation(hs, local))
    return expected


def first_tries(workers: list[CeleryWorker]) -> dict[str, dict[int, Path]]:
    """Each worker's first tries of ``create``: map index -> task log (in the worker's own folder)."""
    return {
        w.name: {
            index: path
            for (index, attempt), path in w.task_logs(DAG_ID, RUN_ID, "create").items()
            if attempt == 1
        }
        for w in workers
    }


def committed_rows(s3: S3Server) -> dict[int, int]:
    """Map index -> rows its checkpoint on S3 says are confirmed (tasks without one are left out)."""
    rows = {}
    for key in s3.keys(BUCKET, "state/checkpoints/"):
        if key.endswith("/state.json"):
            with contextlib.suppress(ValueError, KeyError):  # replaced while read
                rows[int(key.split("/map_")[1].split("/")[0])] = int(json.loads(s3.read(BUCKET, key))["rows"])
    return rows


def load_until_kill(
    cluster: AirflowCluster, workers: list[CeleryWorker], s3: S3Server, deadline: float
) -> dict[str, Any]:
    """Wait until every part has started sending (its first try logged the end of validation), let one
    interval pass (``SETTLE_S``), measure for ``MEASURE_S``, then SIGKILL a worker that runs a task
    with confirmed rows in its checkpoint on S3 while the other still runs one. Return the
    measurement window and what was killed.

    Why the window opens only an interval after every part has started: a process's first request
    cannot know the window (nothing has answered it yet), and processes that start together meet
    only as the window fills; a 429 then says nothing about how the running ones share it (those
    are reported apart). On two busy cores the eight task processes
    start over a minute or more, so some parts may be done by then; the window only needs both
    workers to be sending, which the kill condition checks.
    """
    window_start = None
    while time.monotonic() < deadline:
        cluster.check_alive()
        tries = first_tries(workers)
        if window_start is None:
            started = [i for logs in tries.values() for i, p in logs.items() if SENDING in p.read_text()]
            if len(started) == PARTS:
                window_start = time.time() + SETTLE_S
        elif time.time() >= window_start + MEASURE_S:
            states = cluster.task_states(DAG_ID, RUN_ID)
            running = {
                w.name: {i for i in tries[w.name] if states.get(f"create[{i}]") == "running"} for w in workers
            }
            saved = {index for index, rows in committed_rows(s3).items() if rows > 0}
            for victim in workers:
                others = [w for w in workers if w is not victim]
                if running[victim.name] & saved and all(running[w.name] for w in others):
                    killed = victim.kill()
                    return {
                        "window": (window_start, window_start + MEASURE_S),
                        "all_sending": window_start - SETTLE_S,
                        "victim": victim.name,
                        "victim_tasks": sorted(running[victim.name]),
                        "checkpointed_at_kill": sorted(running[victim.name] & saved),
                        "processes_killed": killed,
                        "placement": {name: sorted(logs) for name, logs in tries.items()},
                    }
            if not any(running.values()):
                raise ClusterError(f"the load ended before the kill, make the parts longer: {states}")
        time.sleep(0.5)
    raise ClusterError("the load never ran on both workers with a checkpoint on S3")


def rate_figures(hs: HubSpotStandIn, start: float, end: float, first_sent: float) -> dict[str, Any]:
    """Aggregate throughput against R x B / 10 s, and the share of 429s, over whole intervals.

    The window [start, end) is a whole number of intervals: HubSpot admits at most R requests in any
    interval, so at most R x B pairs per interval get through however the requests are placed in
    time, and pairs per second over the window against R x B / 10 s is a fair share of the ceiling.
    (The earlier measure, the least time the window allows for the admitted requests against the time
    they took, steps by whole intervals: over 25 s it read 74% for a run that got 99% of the window
    into the same span.) Requests count by when they reached the stand-in, as HubSpot counts them.
    ``first_sent`` is the last part's start: the 429s from there to ``start`` are the processes
    meeting, reported as ``meeting_429``.
    """
    api = [r for r in hs.requests if r.endpoint in API_ENDPOINTS]
    inside = [r for r in api if start <= r.started < end]
    processed = sum(r.n_inputs for r in inside if r.endpoint in WRITE_ENDPOINTS and r.status in OK_WRITE)
    answered_429 = sum(1 for r in inside if r.status == 429)
    meeting = [r for r in api if first_sent <= r.started < start]
    seconds = end - start
    by_endpoint: dict[str, int] = {}
    for r in inside:
        if r.status == 429:
            by_endpoint[r.endpoint] = by_endpoint.get(r.endpoint, 0) + 1
    return {
        "answered_429_by_endpoint": by_endpoint,
        "window_s": round(seconds, 1),
        "admitted": len(inside) - answered_429,
        "pairs_per_s": round(processed / seconds, 1),
        "ceiling_pairs_per_s": CEILING,
        "aggregate_pct": round(100 * processed / (CEILING * seconds), 1),
        "requests": len(inside),
        "answered_429": answered_429,
        "pct_429": round(100 * answered_429 / len(inside), 2) if inside else 0.0,
        "meeting_requests": len(meeting),
        "meeting_429": sum(1 for r in meeting if r.status == 429),
    }


def try_summaries(workers: list[CeleryWorker]) -> list[str]:
    """Each create try's closing summary line (counts, requests, 429s it saw), by worker."""
    found = []
    for worker in workers:
        for (index, attempt), path in sorted(worker.task_logs(DAG_ID, RUN_ID, "create").items()):
            lines = [line for line in path.read_text(errors="replace").splitlines() if SUMMARY in line]
            event = json.loads(lines[-1]).get("event", "") if lines else "(no summary: killed)"
            found.append(f"{worker.name} create[{index}] try {attempt}: {event}")
    return found


def files_outside_logs(worker: CeleryWorker) -> list[str]:
    """What a worker left on its disk besides task logs, its own log file and the rate limiter's peer
    board (empty files named by process, in TMPDIR, that only processes of this worker read)."""
    own = {worker.folder / "worker.log", worker.folder / "pid"}
    board = worker.tmp / "airflow-hubspot-assoc-peers"
    return sorted(
        str(p.relative_to(worker.folder))
        for p in worker.folder.rglob("*")
        if p.is_file() and p not in own and worker.log_folder not in p.parents and board not in p.parents
    )


def check_load(
    cluster: AirflowCluster,
    workers: list[CeleryWorker],
    s3: S3Server,
    hs: HubSpotStandIn,
    expected: list[Expectation],
    kill: dict[str, Any],
) -> dict[str, Any]:
    """Everything a correct recovery must end with; return the resume figures."""

    def context() -> str:
        parts = [f"\nkill: {kill}\nstand-in: {hs.stats.to_dict()}", cluster.diagnostics(DAG_ID, RUN_ID)]
        parts += [w.diagnostics() for w in workers]
        for worker in workers:
            for (index, attempt), path in sorted(worker.task_logs(DAG_ID, RUN_ID, "create").items()):
                text = path.read_text(errors="replace")[-3000:]
                parts.append(f"===== {worker.name} create[{index}] try {attempt} =====\n{text}")
        return "\n".join(parts)

    states = cluster.task_states(DAG_ID, RUN_ID)
    assert set(states.values()) == {"success"} and len(states) == 2 * PARTS, f"{states}{context()}"
    survivor = next(w for w in workers if w.name != kill["victim"])
    survivor_logs = survivor.task_logs(DAG_ID, RUN_ID, "create")
    tries = {
        ti["map_index"]: ti["try_number"]
        for ti in cluster.task_instances(DAG_ID, RUN_ID)
        if ti["task_id"] == "create"
    }
    resumed: dict[int, int] = {}
    for index in kill["victim_tasks"]:
        assert tries[index] >= 2, f"create[{index}] was not retried: {tries}{context()}"
        retry_log = survivor_logs.get((index, tries[index]))
        assert retry_log is not None, f"create[{index}]'s retry did not run on {survivor.name}{context()}"
        record = cluster.xcom(DAG_ID, RUN_ID, "create", map_index=index)
        assert record["source"]["path"] == url(f"in/part-{index:05d}.csv"), f"{index}: {record}"
        if index in kill["checkpointed_at_kill"]:
            assert "Resuming from the checkpoint" in retry_log.read_text(errors="replace"), context()
            assert record["resumed"] is True and record["resumedSkipped"] > 0, f"{record}{context()}"
            resumed[index] = record["resumedSkipped"]
    for index in set(range(PARTS)) - set(kill["victim_tasks"]):
        assert tries[index] == 1, f"create[{index}] on the surviving worker was retried: {tries}{context()}"

    stored = hs.associations("contacts", "companies")
    assert stored == set().union(*(e.stored for e in expected)), context()
    for index, part in enumerate(expected):
        entries = [json.loads(x) for x in s3.read(BUCKET, f"state/failed/{index}.jsonl").splitlines()]
        got = [(e["from_id"], e["to_id"], e["line"]) for e in entries]
        assert len(got) == len(set(got)) and set(got) == part.failed, f"part {index}{context()}"
        assert all(e["category"] == "VALIDATION_ERROR" for e in entries), context()
        record = cluster.xcom(DAG_ID, RUN_ID, "create", map_index=index)
        assert (record["created"], record["failed"]) == (len(part.stored), len(part.failed)), context()
        confirmed = cluster.xcom(DAG_ID, RUN_ID, "confirm", map_index=index)
        assert confirmed["status"] == "CONFIRMED", f"confirm[{index}]: {confirmed}{context()}"
    assert sum(len(e.failed) for e in expected) > 0, "no failed pair was exercised"
    assert s3.keys(BUCKET, "state/checkpoints/") == [], f"checkpoints left on S3{context()}"
    for worker in workers:
        assert files_outside_logs(worker) == [], f"{worker.name} wrote to its disk{context()}"
    return {"retried": sorted(kill["victim_tasks"]), "resumed_rows_skipped": resumed}


@pytest.fixture(scope="module")
def celery_load(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the load once (the cluster takes a minute to start) for the tests below; keep what they
    check: the recovery's outcome (its assertion message, if it failed) and the figures."""
    started = time.monotonic()
    config = StandInConfig(
        seed=5,
        missing_ratio=0.01,
        rate_limit=RateLimitConfig(max_requests=RATE, interval_ms=int(WINDOW_S * 1000)),
        latency=LatencyConfig(base_ms=150, jitter_ms=50),
        request_log_size=200_000,
    )
    with HubSpotStandIn(config) as hs, moto_s3_server() as s3:
        expected = upload_export(s3, tmp_path_factory.mktemp("export"), hs)
        env = {
            "AIRFLOW_CONN_HUBSPOT_DEFAULT": hs.connection_uri(),
            "AIRFLOW_CONN_AWS_DEFAULT": s3.connection_json(),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        }
        dags = {f"{DAG_ID}.py": dag_source(), f"{SYNC_DAG_ID}.py": sync_dag_source(url, POOL)}
        with celery_cluster(dags=dags, env=env, pools={POOL: POOL_SLOTS}) as (cluster, workers):
            cluster_up = time.monotonic()
            cluster.wait_for_dag(DAG_ID)
            cluster.unpause(DAG_ID)
            hs.reset_stats()
            cluster.trigger(DAG_ID, run_id=RUN_ID)
            triggered = time.monotonic()
            kill = load_until_kill(cluster, workers, s3, deadline=time.monotonic() + 300)
            killed = time.monotonic()
            state = cluster.wait_for_run(DAG_ID, RUN_ID, timeout=300)
            finished = time.monotonic()
            rate = rate_figures(hs, *kill["window"], first_sent=kill["all_sending"])
            recovery_error = None
            resume: dict[str, Any] = {}
            try:
                assert state == "success", f"run {state}\n{cluster.diagnostics(DAG_ID, RUN_ID)}"
                resume = check_load(cluster, workers, s3, hs, expected, kill)
            except AssertionError as err:
                recovery_error = str(err)
            load_requests = list(hs.requests)  # phase 1's, before the sync adds its own
            sync_error = None
            sync: dict[str, Any] = {}
            try:
                sync = run_sync_phase(cluster, workers, s3, hs, BUCKET, files_outside_logs)
            except AssertionError as err:
                sync_error = str(err)
            figures = {
                **rate,
                "answered_429_whole_run": sum(1 for r in load_requests if r.status == 429),
                "requests_whole_run": sum(1 for r in load_requests if r.endpoint in API_ENDPOINTS),
                "victim": kill["victim"],
                "placement": kill["placement"],
                "processes_killed": kill["processes_killed"],
                **resume,
                "recovered_s": round(finished - killed, 1),
                "run_s": round(finished - triggered, 1),
                "cluster_start_s": round(cluster_up - started, 1),
                "sync": sync,
                "wall_s_before_teardown": round(time.monotonic() - started, 1),
                "tries": try_summaries(workers),
            }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "celery_s3.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\ncelery_s3 figures: {json.dumps(figures)}")
    return {"figures": figures, "recovery_error": recovery_error, "rate": rate, "sync_error": sync_error}


def test_a_killed_worker_s_tasks_are_retried_on_the_other_and_resume_from_s3(celery_load):
    assert celery_load["recovery_error"] is None, celery_load["recovery_error"]
    figures = celery_load["figures"]
    assert figures["resumed_rows_skipped"], f"no retried task resumed from a checkpoint: {figures}"


def test_a_mirror_sync_with_its_state_on_s3_sends_only_the_changes_on_another_worker(celery_load):
    """Run 2 (churn) on another worker than run 1: exact writes, records, failed pairs, final state."""
    assert celery_load["sync_error"] is None, celery_load["sync_error"]
    sync = celery_load["figures"]["sync"]
    assert sync["run2"]["worker"] != sync["run1"]["worker"], sync
    assert sync["run2"]["writes"] < sync["run1"]["writes"], f"run 2 sent more than the changes: {sync}"


def test_both_workers_share_one_app_s_limit(celery_load):
    """While both workers load: at least 90% of R x B / 10 s in aggregate, at most 1% of 429s, over
    four whole intervals; and at most 1% of 429s over the whole load, the workers' meeting included."""
    rate, figures = celery_load["rate"], celery_load["figures"]
    assert rate["aggregate_pct"] >= 90.0, f"aggregate below 90% of R x B / 10 s: {figures}"
    assert rate["pct_429"] <= 1.0, f"more than 1% of requests answered 429: {figures}"
    whole_run = figures["answered_429_whole_run"] / figures["requests_whole_run"]
    assert whole_run <= 0.01, f"more than 1% of the whole load's requests answered 429: {figures}"
