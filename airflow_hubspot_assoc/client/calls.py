"""The call loop, written once: a sans-I/O step that sync and async drivers run.

Why: the sync path (the load's worker threads, urllib3) and the async path (the trigger, aiohttp)
must wait for the same permits, refresh the same tokens and make the same retry decisions. So the
loop is a generator that does no I/O: it yields what to do next (take a permit, get a token, send
this request, sleep this long, get a new token after a rejection) and receives the outcome, or the
exception, back. ``drive`` and ``adrive`` are the two thin drivers that do the yielded I/O.

The loop's order matters: the permit first, then the token (a long wait for the limiter must not
outlive the token); every permit goes back to the limiter with what came of it, even when the token
or the send failed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any

from airflow_hubspot_assoc.client.answers import Answer, retry_after_seconds
from airflow_hubspot_assoc.client.credentials import Credentials
from airflow_hubspot_assoc.client.limiter import RateLimiter
from airflow_hubspot_assoc.client.retry import REFRESH, RetryPolicy
from airflow_hubspot_assoc.client.stats import CallStats
from airflow_hubspot_assoc.client.transport import AsyncSend, SyncSend, TransportFailed
from airflow_hubspot_assoc.exceptions import HubSpotRateLimitError, HubSpotServerError, HubSpotTransportError

log = logging.getLogger(__name__)

# A token endpoint failing for one of these may work on retry.
_RETRYABLE_AUTH_ERRORS = (HubSpotServerError, HubSpotRateLimitError, HubSpotTransportError)


@dataclass(frozen=True, slots=True)
class Request:
    """A request ready to send (the Authorization header is added per attempt)."""

    method: str
    url: str
    body: bytes | None


@dataclass(frozen=True, slots=True)
class Acquire:
    """Take a permit from the limiter (None back: none within ``timeout``)."""

    timeout: float | None


@dataclass(frozen=True, slots=True)
class Authorize:
    """Get the Authorization header value to send now (may refresh a stale OAuth token)."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request`` with this Authorization header; an Answer back, or TransportFailed thrown in."""

    request: Request
    authorization: str


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reauthorize:
    """HubSpot rejected ``rejected`` as expired: get a new token (once for every thread)."""

    rejected: str


Action = Acquire | Authorize | Send | Sleep | Reauthorize
Steps = Generator[Action, Any, tuple[Answer, int]]


def call_steps(request: Request, *, limiter: RateLimiter, policy: RetryPolicy, stats: CallStats) -> Steps:
    """The decisions of one call; returns the good answer and how many retries it took.

    Non-retryable answers, and retryable ones once the budget is spent, raise the policy's error.
    """
    while True:
        ticket = yield Acquire(policy.permit_timeout())
        if ticket is None:
            policy.give_up()
        try:
            authorization = yield Authorize()
        except _RETRYABLE_AUTH_ERRORS as err:
            limiter.release(ticket, None)
            yield Sleep(policy.on_auth_refresh_error(err))
            continue
        except BaseException:
            limiter.release(ticket, None)
            raise
        stats.add(requests=1)
        try:
            answer: Answer = yield Send(request, authorization)
        except TransportFailed as failed:
            limiter.release(ticket, None)
            log.debug("HubSpot request failed (%s); retrying", type(failed.cause).__name__)
            yield Sleep(policy.on_transport_error(failed))
            continue
        except BaseException:
            limiter.release(ticket, None)
            raise
        retry_after = retry_after_seconds(answer.headers) if answer.status == 429 else None
        limiter.release(ticket, answer.status, answer.headers, retry_after=retry_after)
        delay = policy.on_answer(answer)
        if delay is None:
            return answer, policy.retries
        if delay == REFRESH:
            while True:
                try:
                    yield Reauthorize(authorization)
                    break
                except _RETRYABLE_AUTH_ERRORS as err:
                    yield Sleep(policy.on_auth_refresh_error(err))
            continue
        if answer.status == 429:
            log.debug("HubSpot answered 429; waiting before the retry")
        else:
            log.warning("HubSpot answered %s; retrying", answer.status)
        yield Sleep(delay)


def drive(
    steps: Steps,
    *,
    limiter: RateLimiter,
    credentials: Credentials,
    send: SyncSend,
    sleep: Callable[[float], None],
) -> tuple[Answer, int]:
    """Run a call's steps with blocking I/O (the load's worker threads)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            action = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as done:
            result: tuple[Answer, int] = done.value
            return result
        value, error = None, None
        try:
            if isinstance(action, Acquire):
                value = limiter.acquire(action.timeout)
            elif isinstance(action, Authorize):
                value = credentials.authorization()  # no I/O unless the token is stale
            elif isinstance(action, Send):
                request = action.request
                value = send(
                    request.method, request.url, request.body, {"Authorization": action.authorization}
                )
            elif isinstance(action, Sleep):
                sleep(action.seconds)
            else:
                credentials.after_rejection(action.rejected)
        except BaseException as err:  # handed to the steps, which release the permit and decide
            error = err


async def adrive(
    steps: Steps,
    *,
    limiter: RateLimiter,
    credentials: Credentials,
    send: AsyncSend,
    sleep: Callable[[float], Awaitable[Any]],
) -> tuple[Answer, int]:
    """Run a call's steps without blocking the event loop (the trigger)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            action = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as done:
            result: tuple[Answer, int] = done.value
            return result
        value, error = None, None
        try:
            if isinstance(action, Acquire):
                value = await limiter.aacquire(action.timeout)
            elif isinstance(action, Authorize):
                value = await credentials.aauthorization()  # a refresh runs in a thread
            elif isinstance(action, Send):
                request = action.request
                headers = {"Authorization": action.authorization}
                value = await send(request.method, request.url, request.body, headers)
            elif isinstance(action, Sleep):
                await sleep(action.seconds)
            else:
                await credentials.aafter_rejection(action.rejected)
        except BaseException as err:  # handed to the steps, as in ``drive``
            error = err
