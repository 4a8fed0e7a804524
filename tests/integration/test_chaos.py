"""Chaos: under seeded 5xx, resets, slow answers, 429 storms and expiring OAuth tokens, nothing is lost.

Why: HubSpot (and every proxy in between) fails in all these ways in production, often at once. The
operator retries what can succeed on retry; these tests prove that after such a run the portal holds
exactly the associations it should, that every pair naming a missing record is in the failed-pairs
file with HubSpot's reason, that each row read is accounted for exactly once, and that the package
itself stays polite: its own 429s (not the storms injected on purpose) under 1% of its requests.

How the 429s are told apart: every 429 an injected storm answers is counted by the stand-in
(``stats.faults_injected["storm_429"]``); every other 429 came from the stand-in's rate limit, i.e.
from the package's limiter letting a request out too early. The second test measures the same ratio
in a run with a tight rate limit and no storm at all, where every 429 is the limiter's.
"""

from __future__ import annotations

import time
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.testing import (
    FaultConfig,
    HubSpotStandIn,
    LatencyConfig,
    OAuthApp,
    RateLimitConfig,
    StandInConfig,
)
from tests.helpers import dag_id, oauth_connection_json, run_dag, task_results, task_states
from tests.integration.reliability_support import (
    StormsAtProgress,
    check_failed_file,
    expectation,
    inputs_sent,
    issued_access_tokens,
    names_missing_record,
    throttling,
    write_pairs_csv,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

START = pendulum.datetime(2026, 1, 1, tz="UTC")
CLIENT_ID = "chaos-client"
CLIENT_SECRET = "chaos-client-secret-4f1d2e"
REFRESH_TOKEN = "chaos-refresh-token-9b7c3a"
N_PAIRS = 3_000
DUPLICATES = 12
READ_TIMEOUT_S = 1.0
BATCH_SIZE = 10
STORM_S = 1.0


def chaos_config(seed: int) -> StandInConfig:
    """5% 5xx, 2% resets, 1% answers slower than the read timeout, OAuth access tokens that live 2 s,
    a rate limit, and ~3% of pairs naming a record that does not exist (1.5% of each side's records).
    The 429 storms are started by progress (``StormsAtProgress``)."""
    return StandInConfig(
        seed=seed,
        faults=FaultConfig(
            seed=seed,
            error_5xx_ratio=0.05,
            reset_ratio=0.02,
            slow_ratio=0.01,
            slow_seconds=READ_TIMEOUT_S * 2.5,
        ),
        latency=LatencyConfig(base_ms=15, jitter_ms=30),
        rate_limit=RateLimitConfig(max_requests=40, interval_ms=2_000),
        missing_ratio=0.015,
        oauth_apps=(OAuthApp(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, access_token_ttl_s=2),),
        request_log_size=100_000,
    )


def run_operator(dag_id: str, **kwargs: Any) -> tuple[str, dict]:
    """Run the operator in a one-task DAG through ``dag.test()``; return its state and record."""
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        BatchCreateAssociationsOperator(task_id="create", **kwargs)
    dag_run = run_dag(dag)
    return task_states(dag_run)["create"], task_results(dag_run)["create"]


@pytest.mark.parametrize(
    ("api_version", "type_id", "seed"),
    [("v4", 279, 11), ("2026-09", None, 23)],
    ids=["v4-labelled-207", "2026-09-default-200"],
)
def test_chaos_loses_nothing(request, monkeypatch, tmp_path, api_version, type_id, seed):
    started = time.monotonic()
    with HubSpotStandIn(chaos_config(seed)) as hs:
        pairs = write_pairs_csv(
            tmp_path / "pairs.csv",
            N_PAIRS,
            seed=seed,
            duplicates=DUPLICATES,
            repeatable=lambda f, t: not names_missing_record(hs, f, t),
        )
        expected = expectation(hs, pairs)
        monkeypatch.setenv(
            "AIRFLOW_CONN_HUBSPOT_DEFAULT",
            oauth_connection_json(
                hs, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, api_version=api_version, timeout=READ_TIMEOUT_S
            ),
        )
        failed_path = tmp_path / "out" / "failed.jsonl"
        batches = N_PAIRS // BATCH_SIZE
        with StormsAtProgress(hs, [batches // 5, batches // 2, 4 * batches // 5], STORM_S) as storms:
            state, record = run_operator(
                dag_id(request),
                from_object_type="contacts",
                to_object_type="companies",
                pairs_path=str(pairs.path),
                association_type_id=type_id,
                batch_size=BATCH_SIZE,
                max_concurrency=6,
                max_failed_ratio=0.2,
                failed_pairs_path=str(failed_path),
            )
        elapsed = time.monotonic() - started
        stats = hs.stats.to_dict()
        throttled = throttling(hs)
        context = f"\nrecord: { {k: v for k, v in (record or {}).items() if k not in ('sample', 'errors')} }"
        context += f"\nstand-in: {stats}\n429s: {throttled}"
        assert state == "success", context

        # the faults really happened (a test of chaos that met none proves nothing)
        faults = stats["faults_injected"]
        for kind in ("5xx", "reset", "slow", "storm_429"):
            assert faults.get(kind, 0) > 0, f"no {kind} fault was injected{context}"
        assert storms.started == 3, context
        assert stats["oauth_refreshes"] >= 3, f"the access token was hardly refreshed{context}"
        assert stats["spec_violations"] == 0 and stats["response_violations"] == 0, context

        # exactly the expected associations, nothing more, nothing lost
        assert hs.associations("contacts", "companies") == expected.stored, context
        # exactly the pairs naming missing records in the failed-pairs file, with HubSpot's reason
        assert check_failed_file(hs, failed_path, expected) == [], context
        # every row accounted for exactly once
        assert record["total"] == expected.total == N_PAIRS + DUPLICATES, context
        assert (
            record["created"] + record["failed"] + record["invalid"] + record["duplicates"] == record["total"]
        ), context
        assert record["failed"] == len(expected.failed), context
        assert record["invalid"] == 0, context
        assert record["created"] + record["duplicates"] == expected.total - len(expected.failed), context
        assert record["status"] == "COMPLETE", context
        assert record["retries"] > 0 and record["throttled"] > 0, context
        # The record's counters agree with what the stand-in saw.
        assert record["throttled"] == throttled["answered_429"], context
        # every input reached the stand-in at least once (retries and resets may resend some)
        assert inputs_sent(hs) >= expected.total - record["duplicates"], context

        # Tokens are refreshed ahead of expiry, so expired-token 401s stay rare (every error answer
        # counts against HubSpot's 5% marketplace limit).
        expired = sum(1 for r in hs.requests if r.status == 401)
        assert expired <= 0.01 * throttled["requests"], f"{expired} answers were 401{context}"
        # the package's own 429s (not the storms) stay under 1% of its requests
        assert throttled["limit_429"] <= 0.01 * throttled["requests"], context
        assert len(issued_access_tokens(hs)) == stats["oauth_refreshes"]
    print(
        f"\nchaos {api_version}: {elapsed:.1f}s, {throttled}, faults {dict(faults)}, "
        f"refreshes {stats['oauth_refreshes']}, failed {record['failed']}, dup {record['duplicates']}"
    )


def test_own_429s_under_one_percent_with_a_tight_rate_limit_and_no_storm(request, monkeypatch, tmp_path):
    """Every 429 here is the limiter's fault: no storm, no other client, a limit far below demand."""
    config = StandInConfig(
        seed=5,
        latency=LatencyConfig(base_ms=10, jitter_ms=20),
        rate_limit=RateLimitConfig(max_requests=25, interval_ms=1_000),
        request_log_size=100_000,
    )
    with HubSpotStandIn(config) as hs:
        pairs = write_pairs_csv(tmp_path / "pairs.csv", 2_400, seed=5)
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", hs.connection_uri())
        state, record = run_operator(
            dag_id(request),
            from_object_type="contacts",
            to_object_type="companies",
            pairs_path=str(pairs.path),
            association_type_id=279,
            batch_size=10,
            max_concurrency=16,
        )
        throttled = throttling(hs)
        context = f"\n429s: {throttled}\nstand-in: {hs.stats.to_dict()}"
        assert state == "success", context
        assert record["created"] == 2_400, context
        assert throttled["storm_429"] == 0
        assert throttled["requests"] >= 240, context
        assert throttled["answered_429"] <= 0.01 * throttled["requests"], context
    print(f"\nrate limit 25/1s, no storm: {throttled}")


def test_waiting_for_the_rate_limiter_never_sends_an_expired_token(monkeypatch):
    """A 429 that says the window is full makes the limiter wait about an interval before the next
    send; an OAuth access token taken before that wait can expire during it. The request must carry
    a token that is fresh when it leaves, not one that was fresh when it queued."""
    config = StandInConfig(
        rate_limit=RateLimitConfig(max_requests=40, interval_ms=2_000),
        oauth_apps=(OAuthApp(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, access_token_ttl_s=2),),
    )
    with HubSpotStandIn(config) as hs:
        monkeypatch.setenv(
            "AIRFLOW_CONN_HUBSPOT_DEFAULT",
            oauth_connection_json(hs, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, timeout=READ_TIMEOUT_S),
        )
        hook = HubSpotHook(max_concurrency=2, retry_budget_seconds=30)
        hs.start_429_storm(1.0)  # the very first answer: 429, window full
        inputs = [{"from": {"id": "1"}, "to": {"id": "2"}}]
        for _ in range(5):
            hook.create_default_associations("contacts", "companies", inputs)
        statuses = [r.status for r in hs.requests if r.endpoint == "batch_associate_default"]
        assert 401 not in statuses, f"expired tokens were sent: {statuses}"
