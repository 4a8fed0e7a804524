"""HubSpotBatchStatusTrigger: serialisation, and run() against the stand-in with an injected clock."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.exceptions import HubSpotServerError
from airflow_hubspot_assoc.readback import encode_pairs
from airflow_hubspot_assoc.triggers.associations import HubSpotBatchStatusTrigger
from tests.sensors.support import PRIMARY, UNLABELED, create

PAIRS = [("1", "101"), ("2", "102"), ("3", "103")]


def make_trigger(pairs=PAIRS, types=(UNLABELED,), **kwargs: Any) -> HubSpotBatchStatusTrigger:
    type_sets, rows = encode_pairs(
        AssociationPair(f, t, frozenset(AssociationType(*x) for x in types)) for f, t in pairs
    )
    kwargs.setdefault("hubspot_conn_id", "hubspot_default")
    kwargs.setdefault("from_object_type", "contacts")
    kwargs.setdefault("to_object_type", "companies")
    kwargs.setdefault("deadline", time.time() + 60)
    kwargs.setdefault("poll_interval", 0.2)
    return HubSpotBatchStatusTrigger(type_sets=type_sets, pairs=rows, **kwargs)


class FakeClock:
    """Wall clock for the trigger: sleeping advances it (plus a little real sleep to let I/O happen)."""

    def __init__(self, real_sleep: float = 0.0) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []
        self.real_sleep = real_sleep

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(self.real_sleep)


def run_trigger(trigger: HubSpotBatchStatusTrigger, clock: FakeClock | None = None) -> list[dict[str, Any]]:
    """Run the trigger to its end; return the payloads of every event it yielded."""
    if clock is not None:
        trigger._clock = clock
        trigger._sleep = clock.sleep

    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), timeout=120))


# -- serialisation ---------------------------------------------------------------------------------


def test_serialize_round_trip_is_plain_and_secret_free(hubspot_conn):
    trigger = make_trigger(types=(UNLABELED, PRIMARY), confirmed=7, total=10)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_hubspot_assoc.triggers.associations.HubSpotBatchStatusTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain values only
    rebuilt = HubSpotBatchStatusTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert set(kwargs) == {
        "hubspot_conn_id",
        "from_object_type",
        "to_object_type",
        "type_sets",
        "pairs",
        "deadline",
        "poll_interval",
        "confirmed",
        "total",
        "absent",
    }
    assert hubspot_conn.token not in json.dumps(kwargs)


def test_serialize_through_airflows_serde():
    from airflow.sdk.serde import deserialize, serialize

    classpath, kwargs = make_trigger().serialize()
    again = HubSpotBatchStatusTrigger(**deserialize(serialize(kwargs)))
    assert again.serialize() == (classpath, kwargs)


# -- run() -----------------------------------------------------------------------------------------


@pytest.mark.hubspot_standin(visibility_delay_s=0.6)
def test_success_once_visible(hubspot_conn):
    create(hubspot_conn, PAIRS)
    clock = FakeClock(real_sleep=0.2)
    events = run_trigger(make_trigger(confirmed=2, total=5), clock)
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "success"
    assert (event["confirmed"], event["total"], event["missing_count"], event["missing"]) == (5, 5, 0, [])
    assert "5 of 5 confirmed" in event["message"]
    assert clock.sleeps  # it polled more than once, pausing in between


def test_only_missing_pairs_are_polled_again(hubspot_conn):
    create(hubspot_conn, PAIRS[:1])
    clock = FakeClock()
    events = run_trigger(make_trigger(deadline=clock.now + 1, poll_interval=0.4), clock)
    read_sizes = [r.n_inputs for r in hubspot_conn.requests if r.endpoint == "batch_read"]
    assert read_sizes[0] == 3
    assert set(read_sizes[1:]) == {2}
    assert events[0]["confirmed"] == 1


def test_timeout_with_a_bounded_sample_of_missing_pairs(hubspot_conn):
    pairs = [(str(i), str(1000 + i)) for i in range(1, 31)]
    clock = FakeClock()
    events = run_trigger(make_trigger(pairs, deadline=clock.now + 2, poll_interval=0.5), clock)
    assert len(events) == 1
    event = events[0]
    assert event["status"] == "timeout"
    assert (event["confirmed"], event["total"], event["missing_count"]) == (0, 30, 30)
    assert len(event["missing"]) == 20
    assert event["missing"][0] == {
        "from": "1",
        "to": "1001",
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
        "found": None,
    }
    assert "0 of 30 confirmed; 30 missing, first 20: 1 -> 1001" in event["message"]
    assert "... and 10 more" in event["message"]
    # Paused between polls, never beyond the deadline.
    assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]


def test_auth_error_ends_with_the_hooks_message(hubspot_standin, monkeypatch):
    bad = json.loads(hubspot_standin.connection_uri())
    bad["password"] = "pat-na1-wrong"
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(bad))
    clock = FakeClock()
    events = run_trigger(make_trigger(), clock)
    assert [e["status"] for e in events] == ["error"]
    assert "401" in events[0]["message"]
    assert "pat-na1-wrong" not in events[0]["message"]
    assert clock.sleeps == []  # no waiting for credentials to heal


def test_transient_errors_are_retried_at_the_next_poll(hubspot_conn, monkeypatch):
    from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

    create(hubspot_conn, PAIRS)
    original = HubSpotHook.aread_associations
    calls = {"n": 0}

    async def flaky(self, *args: Any, **kwargs: Any):
        calls["n"] += 1
        if calls["n"] == 1:
            raise HubSpotServerError("HubSpot kept answering 503", status=503)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(HubSpotHook, "aread_associations", flaky)
    clock = FakeClock()
    events = run_trigger(make_trigger(poll_interval=3), clock)
    assert [e["status"] for e in events] == ["success"]
    assert clock.sleeps == [3]  # paused after the error, then read again
    assert calls["n"] == 2


def test_transient_errors_until_the_deadline_time_out_naming_the_error(hubspot_conn, monkeypatch):
    from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

    async def down(self, *args: Any, **kwargs: Any):
        raise HubSpotServerError("HubSpot kept answering 503", status=503)

    monkeypatch.setattr(HubSpotHook, "aread_associations", down)
    clock = FakeClock()
    events = run_trigger(make_trigger(deadline=clock.now + 1, poll_interval=0.5), clock)
    assert [e["status"] for e in events] == ["timeout"]
    assert "Last read error: HubSpot API error 503" in events[0]["message"]
    assert events[0]["missing_count"] == 3


def test_unexpected_errors_end_with_an_error_event(hubspot_conn, monkeypatch):
    from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

    async def broken(self, *args: Any, **kwargs: Any):
        raise ValueError("malformed answer")

    monkeypatch.setattr(HubSpotHook, "aread_associations", broken)
    events = run_trigger(make_trigger(), FakeClock())
    assert [e["status"] for e in events] == ["error"]
    assert "malformed answer" in events[0]["message"]
