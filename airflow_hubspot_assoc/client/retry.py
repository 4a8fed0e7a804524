"""One call's retry decisions, shared by the sync and async drivers (no I/O, no clock of its own).

Retry only what can succeed on retry: 429 (``Retry-After`` first, else a short jittered backoff),
500/502/503/504, connection errors and timeouts, with bounded exponential backoff and full jitter
within a time budget; an expired OAuth token is refreshed once and the call retried at once.
Everything else fails at once with an error that carries HubSpot's status, category, message and
correlation id. The clock, the random source and the counters are arguments, so tests decide them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NoReturn

from airflow_hubspot_assoc.client.answers import (
    RETRYABLE_5XX,
    Answer,
    final_error,
    read_failure,
    retry_after_seconds,
    text,
)
from airflow_hubspot_assoc.client.credentials import EXPIRED_AUTHENTICATION
from airflow_hubspot_assoc.client.stats import CallStats
from airflow_hubspot_assoc.client.transport import TransportFailed
from airflow_hubspot_assoc.exceptions import (
    HubSpotDailyLimitError,
    HubSpotError,
    HubSpotRateLimitError,
    HubSpotServerError,
    HubSpotTlsError,
    HubSpotTransportError,
)

#: ``on_answer``'s "refresh the token, then retry at once".
REFRESH = -1.0


@dataclass(frozen=True)
class RetrySettings:
    """How long one call may keep retrying, and the backoff's first and largest ceilings."""

    budget_s: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0


class RetryPolicy:
    """One call's retry decisions.

    ``on_answer``/``on_transport_error`` return None when the call is done (the answer is good),
    ``0.0``-or-more seconds to wait before the next attempt, ``REFRESH``, or raise the final error.

    :param refreshable: whether the credentials can get a new token after an expired one.
    :param secrets: what to scrub from every message (asked per answer: tokens change).
    """

    def __init__(
        self,
        settings: RetrySettings,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        stats: CallStats,
        refreshable: bool,
        secrets: Callable[[], Iterable[str | None]],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._rng = rng
        self._stats = stats
        self._refreshable = refreshable
        self._secrets = secrets
        self.deadline = clock() + settings.budget_s
        self.retries = 0
        self.refreshed = False
        self._failures = 0
        self._exhausted: Callable[[], HubSpotError] | None = None
        self._cause: BaseException | None = None

    def _backoff(self, base: float | None = None) -> float:
        settings = self._settings
        first = settings.base_delay if base is None else base
        ceiling = min(settings.max_delay, first * 2**self._failures)
        self._failures += 1
        return self._rng.uniform(0, ceiling)

    def _schedule(
        self, delay: float, exhausted: Callable[[], HubSpotError], cause: BaseException | None
    ) -> float:
        self._exhausted, self._cause = exhausted, cause
        if self._clock() + delay > self.deadline:
            raise exhausted() from cause
        self.retries += 1
        self._stats.add(retries=1)
        return delay

    def permit_timeout(self) -> float | None:
        """While retrying, waiting for the rate limiter also counts against the budget."""
        if self._exhausted is None:
            return None
        return max(0.0, self.deadline - self._clock())

    def give_up(self) -> NoReturn:
        """The limiter cannot let the next retry out before the budget ends: raise the last failure."""
        assert self._exhausted is not None
        raise self._exhausted() from self._cause

    def on_transport_error(self, failed: TransportFailed) -> float:
        """A connection error or timeout: retry within the budget, then HubSpotTransportError.

        A TLS failure (bad or untrusted certificate) does not heal on retry: it fails at once.
        """
        self._stats.add(transport_errors=1)
        err, url = failed.cause, failed.url
        if failed.tls:
            raise HubSpotTlsError(
                f"TLS verification of {url.split('://', 1)[-1].split('/', 1)[0]} failed: {err}. "
                "For a private CA, set REQUESTS_CA_BUNDLE to its bundle."
            ) from err
        kind = "timed out" if failed.timed_out else "failed"
        path = url.split("://", 1)[-1].split("/", 1)[-1]

        def exhausted() -> HubSpotError:
            return HubSpotTransportError(
                f"Request to HubSpot (/{path}) {kind} ({type(err).__name__}) and kept failing until the "
                f"retry budget ran out after {self.retries} retries"
            )

        return self._schedule(self._backoff(), exhausted, err)

    def on_auth_refresh_error(self, err: HubSpotError) -> float:
        """The token endpoint failed for a reason retrying may cure (5xx, 429, no connection)."""
        if isinstance(err, HubSpotTlsError):
            raise err
        return self._schedule(self._backoff(), lambda: err, err.__cause__)

    def on_answer(self, answer: Answer) -> float | None:
        """Judge an HTTP answer; see the class docs."""
        status = answer.status
        if 200 <= status < 300:
            return None
        failure = read_failure(answer, self._secrets())
        message, details, category = failure.message, failure.details, failure.category
        if status == 429:
            self._stats.add(throttled=1)
            policy = text(failure.payload.get("policyName"))
            if policy == "DAILY":
                raise HubSpotDailyLimitError(message, **{**details, "category": category or policy})
            retry_after = retry_after_seconds(answer.headers)
            delay = retry_after if retry_after is not None else self._backoff(self._settings.base_delay / 4)
            return self._schedule(
                delay,
                lambda: HubSpotRateLimitError(
                    f"{message} (still throttled when the retry budget ran out after {self.retries} retries)",
                    **{**details, "category": category or policy},
                ),
                None,
            )
        if status in RETRYABLE_5XX:
            self._stats.add(server_errors=1)
            return self._schedule(
                self._backoff(),
                lambda: HubSpotServerError(
                    f"{message} (kept failing until the retry budget ran out after {self.retries} retries)",
                    **details,
                ),
                None,
            )
        if status == 401 and category == EXPIRED_AUTHENTICATION and self._refreshable and not self.refreshed:
            self.refreshed = True
            self.retries += 1
            self._stats.add(retries=1)
            return REFRESH
        raise final_error(failure)
