"""The call loop: one sans-I/O step, two drivers that must make exactly the same decisions.

The step is run by the sync driver (blocking limiter, token, send and sleep) and by the async one
(their async forms) over the same scripted answers; the I/O they do is recorded and compared. Only
the network is scripted (the answers); the limiter, the retry policy and the step are the real ones.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from airflow_hubspot_assoc.client.answers import Answer
from airflow_hubspot_assoc.client.calls import (
    Acquire,
    Authorize,
    Request,
    Send,
    Sleep,
    adrive,
    call_steps,
    drive,
)
from airflow_hubspot_assoc.client.credentials import Credentials
from airflow_hubspot_assoc.client.limiter import RateLimiter
from airflow_hubspot_assoc.client.retry import RetryPolicy, RetrySettings
from airflow_hubspot_assoc.client.stats import CallStats
from airflow_hubspot_assoc.client.transport import TransportFailed
from airflow_hubspot_assoc.exceptions import HubSpotServerError

URL = "http://127.0.0.1:9/crm/v4/associations/contacts/companies/batch/create"
JSON = {"Content-Type": "application/json"}


def answer(status: int, body: bytes = b"{}", **headers: str) -> Answer:
    return Answer(status, {**JSON, **headers}, body)


EXPIRED = answer(401, b'{"category": "EXPIRED_AUTHENTICATION", "message": "expired"}')
FAILED = TransportFailed(ConnectionResetError("reset"), URL, tls=False, timed_out=False)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RotatingToken(Credentials):
    """A refreshable credential whose token changes on each rejection; records what is asked of it."""

    identity = "test"
    refreshable = True

    def __init__(self, events: list) -> None:
        self.events = events
        self.generation = 0

    def authorization(self) -> str:
        self.events.append(("authorize",))
        return f"Bearer t{self.generation}"

    def fresh_authorization(self) -> str | None:
        return None

    async def aauthorization(self) -> str:
        return self.authorization()

    def after_rejection(self, rejected: str) -> str:
        self.events.append(("reauthorize", rejected))
        self.generation += 1
        return f"Bearer t{self.generation}"

    async def aafter_rejection(self, rejected: str) -> str:
        return self.after_rejection(rejected)

    def secrets(self) -> tuple[str, ...]:
        return ()


def run(script: list, *, use_async: bool, budget_s: float = 60.0):
    """Run one call over ``script`` (answers, or exceptions the transport raises) with either driver."""
    events: list = []
    clock = Clock()
    stats = CallStats()
    limiter = RateLimiter(clock=clock, max_in_flight=4)
    credentials = RotatingToken(events)
    policy = RetryPolicy(
        RetrySettings(budget_s, 0.5, 4.0),
        clock=clock,
        rng=random.Random(7),
        stats=stats,
        refreshable=True,
        secrets=credentials.secrets,
    )
    pending = list(script)

    def send(method, url, body, headers):
        events.append(("send", method, url, body, headers["Authorization"]))
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def sleep(seconds: float) -> None:
        events.append(("sleep", seconds))
        clock.now += seconds

    steps = call_steps(Request("POST", URL, b"{}"), limiter=limiter, policy=policy, stats=stats)
    kwargs = {"limiter": limiter, "credentials": credentials}
    try:
        if use_async:

            async def asend(*args):
                return send(*args)

            async def asleep(seconds: float) -> None:
                sleep(seconds)

            result = asyncio.run(adrive(steps, send=asend, sleep=asleep, **kwargs))
        else:
            result = drive(steps, send=send, sleep=sleep, **kwargs)
    except Exception as err:
        result = err
    assert limiter.snapshot()["in_flight"] == 0  # every permit went back
    return result, events, stats.snapshot()


SCRIPTS = {
    "ok": [answer(201)],
    "transport then 5xx then 429 then ok": [
        FAILED,
        answer(503),
        answer(429, **{"Retry-After": "2"}),
        answer(200),
    ],
    "expired token refreshed once": [EXPIRED, answer(201)],
    "expired twice is an auth error": [EXPIRED, EXPIRED],
    "validation fails at once": [answer(400, b'{"category": "VALIDATION_ERROR", "message": "bad"}')],
    "tls fails at once": [TransportFailed(OSError("cert"), URL, tls=True, timed_out=False)],
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_sync_and_async_drivers_make_the_same_decisions(name):
    sync = run(SCRIPTS[name], use_async=False)
    asynchronous = run(SCRIPTS[name], use_async=True)
    assert sync[1] == asynchronous[1]  # the same I/O, in the same order, with the same waits
    assert sync[2] == asynchronous[2]  # the same counters
    if isinstance(sync[0], Exception):
        assert type(sync[0]) is type(asynchronous[0]) and str(sync[0]) == str(asynchronous[0])
    else:
        assert sync[0] == asynchronous[0]


def test_the_decisions_themselves():
    (good, retries), events, stats = run(SCRIPTS["transport then 5xx then 429 then ok"], use_async=False)
    assert good.status == 200 and retries == 3
    kinds = [e[0] for e in events]
    assert kinds == ["authorize", "send", "sleep"] * 3 + ["authorize", "send"]
    assert events[8] == ("sleep", 2.0)  # Retry-After, not the backoff
    assert stats["requests"] == 4 and stats["retries"] == 3 and stats["throttled"] == 1
    assert stats["server_errors"] == 1 and stats["transport_errors"] == 1

    (good, retries), events, _ = run(SCRIPTS["expired token refreshed once"], use_async=False)
    assert ("reauthorize", "Bearer t0") in events
    assert events[-1] == ("send", "POST", URL, b"{}", "Bearer t1")
    assert not [e for e in events if e[0] == "sleep"]  # a refresh retries at once

    for name, error in [
        ("expired twice is an auth error", "HubSpotAuthError"),
        ("validation fails at once", "HubSpotValidationError"),
        ("tls fails at once", "HubSpotTlsError"),
    ]:
        result, events, _ = run(SCRIPTS[name], use_async=False)
        assert type(result).__name__ == error
        assert len([e for e in events if e[0] == "send"]) == (2 if "twice" in name else 1)


def test_the_budget_ends_the_retries_with_the_last_failure():
    result, events, _ = run([answer(502)] * 50, use_async=False, budget_s=3.0)
    assert isinstance(result, HubSpotServerError) and result.status == 502
    waits = [e[1] for e in events if e[0] == "sleep"]
    assert waits and sum(waits) <= 3.0


def test_the_step_yields_permit_then_token_then_send():
    """The order is the contract: a long wait for a permit must not outlive the token it sends."""
    clock = Clock()
    stats = CallStats()
    limiter = RateLimiter(clock=clock)
    policy = RetryPolicy(
        RetrySettings(), clock=clock, rng=random.Random(1), stats=stats, refreshable=False, secrets=tuple
    )
    steps = call_steps(Request("GET", URL, None), limiter=limiter, policy=policy, stats=stats)
    assert next(steps) == Acquire(None)
    ticket, _ = limiter.try_acquire()
    assert steps.send(ticket) == Authorize()
    assert steps.send("Bearer x") == Send(Request("GET", URL, None), "Bearer x")
    wait = steps.send(answer(503))
    assert isinstance(wait, Sleep) and 0 <= wait.seconds <= RetrySettings().base_delay
    assert isinstance(steps.send(None), Acquire)
    with pytest.raises(StopIteration) as done:
        ticket, _ = limiter.try_acquire()
        steps.send(ticket)
        steps.send("Bearer x")
        steps.send(answer(200))
    assert done.value.value[1] == 1
