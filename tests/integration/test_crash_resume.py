"""Crash and resume: a task killed with SIGKILL mid-load is retried by Airflow and resumes, losing nothing.

Why: workers die without warning (the OOM killer, a node going away). ``on_kill`` never runs then; all
that survives is the checkpoint. These tests run real Airflow processes (scheduler, api-server,
dag-processor, triggerer; LocalExecutor on SQLite), start a load of about 20 s against a HubSpot
stand-in with latency, SIGKILL the task's process once the stand-in has seen some writes, and let
Airflow's own retry (``retries=1``) run the task again. The retry must resume from the checkpoint
(its log says so, its record says ``resumed``), send again at most the batches that were in flight at
the kill, end in exactly the state of an uninterrupted run, and remove the checkpoint.

Two ways to die are covered, in one cluster:

* ``runner``: only the task runner (``airflow worker -- <ti id>``) is killed, as the OOM killer would.
  Its supervisor (the LocalExecutor worker process) sees the child die and reports the try failed.
* ``worker``: the supervisor is killed first, then the task runner, as when a whole worker dies.
  Nobody reports anything; the scheduler finds the task instance by its missing heartbeat after
  ``[scheduler] task_instance_heartbeat_timeout`` (set to 20 s here) and fails the try.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.testing import FaultConfig, HubSpotStandIn, LatencyConfig, StandInConfig
from tests.integration.airflow_cluster import AirflowCluster, ClusterError, airflow_cluster
from tests.integration.reliability_support import (
    check_failed_file,
    expectation,
    inputs_sent,
    read_jsonl,
    write_pairs_csv,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

N_PAIRS = 2_000
BATCH_SIZE = 10
MAX_CONCURRENCY = 2  # also max_burst: the stand-in announces a window, which would allow more in flight
#: Sends at most this many inputs again after a kill: the batches the load may hold uncommitted.
RESEND_BOUND = 2 * MAX_CONCURRENCY * BATCH_SIZE
#: Writes the stand-in must have seen before the kill (of about N_PAIRS / BATCH_SIZE = 200).
KILL_AFTER_WRITES = 50
HEARTBEAT_TIMEOUT_S = 20
SCENARIOS = {"runner": 20_000_000, "worker": 40_000_000}  # scenario -> from-id base of its input


def standin_config(latency: bool = True) -> StandInConfig:
    """~1% of pairs name a missing record; 150-200 ms per request makes the load last ~20 s."""
    return StandInConfig(
        seed=3,
        missing_ratio=0.005,
        latency=LatencyConfig(base_ms=150, jitter_ms=50) if latency else LatencyConfig(),
        request_log_size=100_000,
    )


def dag_source(dag_id: str, pairs: Path, failed: Path, checkpoints: Path) -> str:
    """A one-task DAG: the operator with one retry, a short retry delay and checkpoints every commit."""
    return textwrap.dedent(
        f'''
        """Crash-and-resume e2e DAG ({dag_id})."""

        from __future__ import annotations

        from datetime import timedelta

        import pendulum
        from airflow.sdk import DAG

        from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator

        with DAG(
            "{dag_id}",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            catchup=False,
            tags=["e2e"],
        ):
            BatchCreateAssociationsOperator(
                task_id="create",
                from_object_type="contacts",
                to_object_type="companies",
                pairs_path="{pairs}",
                association_type_id=279,
                batch_size={BATCH_SIZE},
                max_concurrency={MAX_CONCURRENCY},
                max_burst={MAX_CONCURRENCY},
                max_failed_ratio=0.2,
                failed_pairs_path="{failed}",
                checkpoint_path="{checkpoints}",
                checkpoint_interval=0.0,
                progress_interval=2.0,
                retries=1,
                retry_delay=timedelta(seconds=2),
            )
        '''
    )


def task_instance(cluster: AirflowCluster, dag_id: str, run_id: str) -> dict:
    """The ``create`` task instance of a run (REST API)."""
    (ti,) = [t for t in cluster.task_instances(dag_id, run_id) if t["task_id"] == "create"]
    return ti


def task_processes(cluster: AirflowCluster, ti_id: str) -> tuple[psutil.Process, psutil.Process] | None:
    """(supervisor, task runner) of a running try, searched among the scheduler's descendants only.

    The task runner titles itself ``airflow worker -- <ti id>``; its parent is the LocalExecutor
    worker (``airflow worker -- LocalExecutor: ...``) that supervises it.
    """
    scheduler = psutil.Process(cluster.processes["scheduler"].pid)
    for proc in scheduler.children(recursive=True):
        try:
            title = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if title.strip() == f"airflow worker -- {ti_id}":
            return proc.parent(), proc
    return None


def kill_mid_load(
    cluster: AirflowCluster, hs: HubSpotStandIn, dag_id: str, run_id: str, scenario: str
) -> str:
    """Wait until the first try has sent some writes, SIGKILL it as ``scenario`` says; say what died."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        cluster.check_alive()
        if hs.stats.write_requests >= KILL_AFTER_WRITES:
            break
        time.sleep(0.05)
    else:
        raise ClusterError(f"no writes reached the stand-in\n{cluster.diagnostics(dag_id, run_id)}")
    ti = task_instance(cluster, dag_id, run_id)
    assert ti["try_number"] == 1 and ti["state"] == "running", ti
    processes = task_processes(cluster, ti["id"])
    assert processes is not None, f"no task runner process for {ti['id']}\n{cluster.diagnostics(dag_id)}"
    supervisor, runner = processes
    assert "LocalExecutor" in " ".join(supervisor.cmdline()), supervisor.cmdline()
    writes_at_kill = hs.stats.write_requests
    if scenario == "worker":
        os.kill(supervisor.pid, signal.SIGKILL)
    os.kill(runner.pid, signal.SIGKILL)
    assert writes_at_kill < N_PAIRS // BATCH_SIZE, "the load finished before the kill"
    return (
        f"killed the {scenario} (runner pid {runner.pid}, supervisor pid {supervisor.pid}) "
        f"after {writes_at_kill} writes"
    )


def uninterrupted_reference(pairs_path: Path, tmp_path: Path) -> tuple[dict, list[dict], set]:
    """The record, failed-pairs file and stored associations of one uninterrupted run (no latency)."""
    failed = tmp_path / "reference-failed.jsonl"
    with HubSpotStandIn(standin_config(latency=False)) as reference, pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", reference.connection_uri())
        record = BatchCreateAssociationsOperator(
            task_id="reference",
            from_object_type="contacts",
            to_object_type="companies",
            pairs_path=str(pairs_path),
            association_type_id=279,
            batch_size=BATCH_SIZE,
            max_concurrency=MAX_CONCURRENCY,
            max_burst=MAX_CONCURRENCY,
            max_failed_ratio=0.2,
            failed_pairs_path=str(failed),
        ).execute({})
        stored = reference.associations("contacts", "companies")
    return record, read_jsonl(failed), stored


def comparable(entries: list[dict]) -> list[tuple]:
    """Failed-pairs entries without the parts that differ between runs (correlation ids)."""
    return sorted((e["from_id"], e["to_id"], e["line"], e["category"], e["message"]) for e in entries)


def crash_and_check(
    cluster: AirflowCluster, hs: HubSpotStandIn, scenario: str, scenario_input: tuple, tmp_path: Path
) -> str:
    """Run one DAG, kill its first try as ``scenario`` says, and check the retry; return a summary."""
    dag_id, pairs, failed_path, checkpoints = scenario_input
    hs.reset_stats()
    expected = expectation(hs, pairs)
    run_id = cluster.trigger(dag_id)
    killed_at = time.monotonic()
    what = kill_mid_load(cluster, hs, dag_id, run_id, scenario)
    state = cluster.wait_for_run(dag_id, run_id, timeout=300)
    recovered_in = time.monotonic() - killed_at

    def context() -> str:
        return f"\n{what}\nstand-in: {hs.stats.to_dict()}\n{cluster.diagnostics(dag_id, run_id)}"

    ti = task_instance(cluster, dag_id, run_id)
    assert state == "success", f"run {state}, task {ti}{context()}"
    assert ti["try_number"] == 2, f"Airflow did not retry the killed try: {ti}{context()}"
    retry_log = cluster.task_log(dag_id, run_id, "create", 2)
    assert "Resuming from the checkpoint" in retry_log, context()
    record = cluster.xcom(dag_id, run_id, "create")
    assert record["resumed"] is True and record["resumedSkipped"] > 0, f"{record}{context()}"

    # at most the batches in flight at the kill were sent twice
    sent = inputs_sent(hs)
    assert N_PAIRS <= sent <= N_PAIRS + RESEND_BOUND, f"{sent} inputs sent{context()}"

    # the same final state as an uninterrupted run
    from_ids = {row[0] for row in pairs.rows}
    ours = {a for a in hs.associations("contacts", "companies") if a[0] in from_ids}
    assert ours == expected.stored, context()
    assert check_failed_file(hs, failed_path, expected) == [], context()
    reference, reference_failed, reference_stored = uninterrupted_reference(pairs.path, tmp_path / scenario)
    for key in ("status", "total", "created", "failed", "invalid", "duplicates"):
        assert record[key] == reference[key], f"{key}: {record[key]} != {reference[key]}{context()}"
    assert comparable(read_jsonl(failed_path)) == comparable(reference_failed), context()
    assert ours == reference_stored, context()
    assert record["created"] + record["failed"] + record["invalid"] + record["duplicates"] == N_PAIRS

    # how the try ended: reported by its supervisor, or found by the scheduler without a heartbeat
    events = cluster.audit_events(dag_id, run_id, "create")
    if scenario == "worker":
        assert "heartbeat timeout" in events, f"audit events {events}{context()}"
    else:
        assert "heartbeat timeout" not in events, f"audit events {events}{context()}"

    # the checkpoint is gone once the load succeeded
    left = [p for p in checkpoints.rglob("*") if p.is_file()]
    assert left == [], f"checkpoint files left behind: {left}{context()}"
    return (
        f"{scenario}: {what}; the retry skipped {record['resumedSkipped']} rows and "
        f"{sent - N_PAIRS} inputs were sent twice (bound {RESEND_BOUND}); success "
        f"{recovered_in:.0f}s after the kill; audit events {events}"
    )


def test_sigkilled_load_is_retried_by_airflow_and_resumes_from_its_checkpoint(tmp_path):
    started = time.monotonic()
    inputs = {}
    dags = {}
    for scenario, base in SCENARIOS.items():
        dag_id = f"crash_resume_{scenario}"
        folder = tmp_path / "work" / scenario
        pairs = write_pairs_csv(folder / "pairs.csv", N_PAIRS, seed=base, from_base=base)
        failed, checkpoints = folder / "out" / "failed.jsonl", folder / "checkpoints"
        inputs[scenario] = (dag_id, pairs, failed, checkpoints)
        dags[f"{dag_id}.py"] = dag_source(dag_id, pairs.path, failed, checkpoints)
    with (
        HubSpotStandIn(standin_config()) as hs,
        airflow_cluster(
            dags=dags,
            env={
                "AIRFLOW_CONN_HUBSPOT_DEFAULT": hs.connection_uri(),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            },
        ) as cluster,
    ):
        for dag_id, *_ in inputs.values():
            cluster.wait_for_dag(dag_id)
            cluster.unpause(dag_id)
        report = [crash_and_check(cluster, hs, name, given, tmp_path) for name, given in inputs.items()]
    print("\n" + "\n".join(report) + f"\ntotal {time.monotonic() - started:.0f}s")


# -- the resend bound when one batch lags behind the others ------------------------------------------
#: How long after a slow answer started the first try is killed (the read timeout is 3 s).
LAG_S = 2.0
TRY_SCRIPT = """
import json, sys
from types import SimpleNamespace
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
ti = SimpleNamespace(dag_id="d", run_id="r", task_id="create", map_index=-1, try_number=1)
BatchCreateAssociationsOperator(**json.loads(sys.argv[1])).execute({"ti": ti})
"""


@pytest.mark.timeout(300)
def test_resend_bound_holds_when_one_batch_lags_at_the_kill(tmp_path):
    """A batch stuck in retries must not let later, answered batches pile up uncommitted.

    Commits happen in input order, so while one batch waits for its retry, later batches that were
    answered wait too. If the load keeps sending meanwhile (it bounds only the requests in flight, not
    the uncommitted ones), a SIGKILL then loses every one of those answers and the retry sends them
    all again. Here one answer in ~30 is slower than the read timeout; the first try is SIGKILLed while
    such a batch lags, and what HubSpot already holds beyond the checkpoint is what the retry resends.
    """
    config = StandInConfig(
        seed=8,
        latency=LatencyConfig(base_ms=20, jitter_ms=10),
        faults=FaultConfig(seed=8, slow_ratio=0.03, slow_seconds=6.0),
        rate_limit=None,
        request_log_size=100_000,
    )
    pairs = write_pairs_csv(tmp_path / "pairs.csv", 6_000, seed=8)
    checkpoints = tmp_path / "checkpoints"
    kwargs = {
        "task_id": "create",
        "from_object_type": "contacts",
        "to_object_type": "companies",
        "pairs_path": str(pairs.path),
        "association_type_id": 279,
        "batch_size": BATCH_SIZE,
        "max_concurrency": MAX_CONCURRENCY,
        "max_burst": MAX_CONCURRENCY,
        "checkpoint_path": str(checkpoints),
        "checkpoint_interval": 0.0,
    }
    with HubSpotStandIn(config) as hs:
        env = {**os.environ, "AIRFLOW_CONN_HUBSPOT_DEFAULT": hs.connection_uri(timeout=3)}
        output = (tmp_path / "first-try.log").open("wb")
        first = subprocess.Popen(
            [sys.executable, "-c", TRY_SCRIPT, json.dumps(kwargs)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            slow_seen_at = None
            while time.monotonic() < deadline and first.poll() is None:
                if slow_seen_at is None and hs.stats.faults_injected.get("slow", 0):
                    slow_seen_at = time.monotonic()
                if slow_seen_at is not None and time.monotonic() > slow_seen_at + LAG_S:
                    break
                time.sleep(0.005)
            log = (tmp_path / "first-try.log").read_text(errors="replace")[-3000:]
            assert first.poll() is None, f"the first try ended before the kill:\n{log}"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
            output.close()
        stored_at_kill = {(f, t) for f, t, _, _ in hs.associations("contacts", "companies")}
        state_file = next(checkpoints.rglob("state.json"))
        committed = json.loads(state_file.read_text())["rows"]
        applied_beyond = {(f, t) for f, t, line in pairs.rows if line - 2 >= committed} & stored_at_kill
        print(
            f"\nkilled {LAG_S}s into a lag: checkpoint at row {committed}, {len(stored_at_kill)} pairs "
            f"stored, {len(applied_beyond)} of them beyond the checkpoint"
        )
        assert len(applied_beyond) <= RESEND_BOUND, (
            f"{len(applied_beyond)} pairs HubSpot already holds lie beyond the checkpoint (row {committed}) "
            f"and will be sent again; the bound is {RESEND_BOUND} (2 x the requests in flight x batch_size)"
        )
