"""Injected faults (reproducible by seed), latency, concurrency and the counters."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from airflow_hubspot_assoc.testing import FaultConfig, HubSpotStandIn, LatencyConfig, StandInConfig
from tests.testing.support import call, create_inputs, path, read_inputs, session


def run_batches(hs: HubSpotStandIn, n: int = 40) -> list[str]:
    """Send n distinct batches once each; return what happened to each."""
    outcomes = []
    for i in range(n):
        s = session(hs.token)  # a fresh connection: a reset must not poison the next request
        try:
            response = call(hs, "v4", "batch_create", create_inputs([(str(i + 1), "500")]), s=s, timeout=5)
            outcomes.append(str(response.status_code))
        except requests.ConnectionError:
            outcomes.append("reset")
    return outcomes


def test_faults_are_reproducible_by_seed():
    faults = {"seed": 3, "error_5xx_ratio": 0.25, "reset_ratio": 0.15}
    runs = []
    for seed in (3, 3, 4):
        config = StandInConfig.from_dict({"rate_limit": None, "faults": {**faults, "seed": seed}})
        with HubSpotStandIn(config) as hs:
            runs.append(run_batches(hs))
            assert hs.stats.faults_injected["5xx"] == sum(o.startswith("5") for o in runs[-1])
            assert hs.stats.faults_injected["reset"] == runs[-1].count("reset")
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    kinds = set(runs[0])
    assert "201" in kinds and "reset" in kinds and kinds & {"500", "502", "503", "504"}


def test_5xx_happens_before_applying_and_reset_after():
    config = StandInConfig(rate_limit=None, faults=FaultConfig(seed=1, error_5xx_ratio=0.3, reset_ratio=0.3))
    with HubSpotStandIn(config) as hs:
        outcomes = run_batches(hs, 30)
        stored = {f for f, _, _, _ in hs.associations("contacts", "companies")}
        for i, outcome in enumerate(outcomes):
            assert (str(i + 1) in stored) == (outcome in ("201", "reset")), (i, outcome)
        assert [r.status for r in hs.requests] == [0 if o == "reset" else int(o) for o in outcomes]


def test_a_retried_request_draws_again():
    config = StandInConfig(rate_limit=None, faults=FaultConfig(seed=5, error_5xx_ratio=0.5))
    with HubSpotStandIn(config) as hs:
        s = session(hs.token)
        statuses = [
            call(hs, "v4", "batch_create", create_inputs([("1", "2")]), s=s).status_code for _ in range(12)
        ]
    assert 201 in statuses and any(s >= 500 for s in statuses)


def test_slow_answers_outlast_a_read_timeout():
    config = StandInConfig(faults=FaultConfig(slow_ratio=1.0, slow_seconds=1.0))
    with HubSpotStandIn(config) as hs:
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            session(hs.token).post(
                hs.url + path("v4", "batch_create"), json=create_inputs([("1", "2")]), timeout=0.2
            )
        assert time.monotonic() - started < 0.9
        # The write was applied all the same (a retry must be harmless).
        assert hs.associations("contacts", "companies") == {("1", "2", "HUBSPOT_DEFINED", 279)}
        assert hs.stats.faults_injected["slow"] == 1


def test_stop_wakes_slow_answers():
    config = StandInConfig(faults=FaultConfig(slow_ratio=1.0, slow_seconds=30.0))
    hs = HubSpotStandIn(config).start()
    errors: list[Exception] = []

    def slow_call() -> None:
        try:
            session(hs.token).post(hs.url + path("v4", "batch_read"), json=read_inputs(["1"]), timeout=10)
        except requests.RequestException as err:
            errors.append(err)

    thread = threading.Thread(target=slow_call)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    hs.stop()
    thread.join(5)
    assert time.monotonic() - started < 3
    assert len(errors) == 1 and isinstance(errors[0], requests.ConnectionError)


@pytest.mark.hubspot_standin(latency=LatencyConfig(base_ms=60, per_input_ms=1, jitter_ms=20), rate_limit=None)
def test_latency(hubspot_standin):
    hs = hubspot_standin
    s = session(hs.token)
    call(hs, "v4", "batch_read", read_inputs(["1"]), s=s)  # warm the connection
    started = time.monotonic()
    call(hs, "v4", "batch_create", create_inputs([(str(i + 1), "7") for i in range(40)]), s=s)
    assert time.monotonic() - started >= 0.1  # 60 + 40 x 1 ms at least


@pytest.mark.hubspot_standin(latency=LatencyConfig(base_ms=300), rate_limit=None)
def test_concurrent_requests_are_served_in_parallel(hubspot_standin):
    hs = hubspot_standin
    n = 24
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        response = call(hs, "v4", "batch_create", create_inputs([(str(i + 1), "1")]))
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - started
    assert statuses == [201] * n
    assert hs.stats.peak_concurrency >= n // 2  # generous: the machine is shared
    assert elapsed < n * 0.3 / 3
    assert hs.stats.concurrency == 0


def test_counters_and_the_control_endpoints(hubspot_standin):
    hs = hubspot_standin
    hs.set_missing_records("companies", ["9"])
    call(hs, "v4", "batch_create", create_inputs([("1", "2"), ("3", "9")]))
    call(hs, "2026-09", "batch_associate_default", {"inputs": [{"from": {"id": "1"}, "to": {"id": "3"}}]})
    call(hs, "2026-03", "batch_read", read_inputs(["1", "3"]))
    call(hs, "v4", "labels")
    call(hs, "v4", "batch_create", {"inputs": "nope"})
    stats = requests.get(hs.url + "/__standin__/stats", timeout=5).json()
    assert stats["requests_total"] == 5
    assert stats["by_endpoint_status"] == {
        "batch_associate_default:200": 1,
        "batch_create:207": 1,
        "batch_create:400": 1,
        "batch_read:200": 1,
        "labels:200": 1,
    }
    assert stats["write_requests"] == 3 and stats["read_requests"] == 1
    assert stats["inputs_received"] == 5
    assert stats["associations_written"] == 2
    assert stats["spec_violations"] == 1 and stats["spec_violation_messages"]
    assert stats["response_violations"] == 0
    assert stats["peak_concurrency"] >= 1
    assert hs.stats.by_endpoint_status[("batch_create", 207)] == 1
    assert requests.post(hs.url + "/__standin__/reset", timeout=5).json() == {"status": "ok"}
    assert hs.stats.requests_total == 0 and hs.requests == []
    assert requests.get(hs.url + "/__standin__/health", timeout=5).status_code == 200
    hs.reset_stats()
    assert hs.stats.to_dict()["by_endpoint_status"] == {}
