"""A process-wide, adaptive limiter for HubSpot's per-app rolling-window rate limit.

Why one limiter per process per app: HubSpot counts requests per app (private-app token or OAuth
client), not per hook or thread, so every hook and thread of a process that uses the same host and
credential takes its permits from one limiter (``limiter_for``), keyed by host and a one-way
fingerprint of the credential.

Design (every decision is made under one lock, in a few microseconds per request):

* **Start careful.** Until the first response arrives, one request at a time: the limit is unknown.
  The first window is then filled over a short ramp (about a tenth of the interval) rather than in
  one burst, so that other processes of the app that start at about the same time still find room and
  are seen; this costs a lone process that ramp once per run, not per window.
* **Own sliding log.** Once ``X-HubSpot-RateLimit-Max`` (M) and ``-Interval-Milliseconds`` (I) are known,
  the limiter logs the send time of each of its requests. A send leaves our window I + margin after
  it left (the margin, 50 ms to start with, covers scheduling and transit jitter and doubles after a
  429 that our own log cannot explain). Alone on an app this is the fastest legal schedule: M sends at
  once, then one more each time an old one leaves the window.
* **The window, not a concurrency cap, paces a load.** Without a window, at most ``max_in_flight``
  requests are in flight (latency then bounds throughput). Once a window is announced, up to the
  requests the window lets us send may be in flight (at most ``max_burst``, by default the window's
  size up to 250, HubSpot's largest): sending a window's requests together, rather than a few at a
  time, is what lets a load of N requests finish (ceil(N / M) - 1) intervals after it started plus a
  round trip, the least the window allows. ``in_flight_cap`` tells callers how many threads are useful.
* **Others seen through ``-Remaining``.** Each answer tells how many requests the server counted in its
  window (M - Remaining). Whatever our log does not explain was sent by other processes of the same
  app (other Airflow workers): the foreign count F. The limiter never lets its own count exceed M - F,
  so processes sharing an app slow down together instead of storming into 429s. Because others
  recycle their slots as those expire, a brief dip in F is a slot in transit, not a slot given up: F is
  taken as its peak over the last half interval. Without news for an interval, F lapses.
* **Sharing fairly (AIMD without knowing how many share).** As soon as others are seen, each process
  caps its own count at a level L that it steers so that the total (own + F) approaches M: while at
  least two slots are free, every process grows L at the same pace (2 x the free slots per interval,
  continuously in time, not per answer, and by at most its part of the free slots between two
  answers, so that processes seeing the same room do not all jump into it); above M, each shrinks L in
  proportion to its share of the window; and when the window is (nearly) full, each sheds a little more
  in proportion to the square of its share (``churn``), so a big user keeps making room that a latecomer
  grows into. Equal additive growth with share-proportional decrease is AIMD: shares converge to equal
  while the total stays just under the limit instead of oscillating into it. Sends are also paced (at
  least I / 2M apart) so that slots, and with them the news from the server, spread over the window.
  After two intervals without seeing anyone else, the process takes the whole window again.
  Measured: in a simulation of four processes sharing 100/10 s, with 5 ms to 400 ms round trips and
  starts spread over up to 1.5 s, 93 to 98% of the limit used in aggregate, under 0.5% 429s, every
  process above 20% of the total; alone, 600 to 1,200 batches within 1.5 to 5% of the ideal time. Over
  real HTTP against the stand-in (``make bench``): one process bursting each window, 601 requests at
  100 or 190 per 10 s, 100.6 to 103% of the least time the window allows and no 429; four processes of
  one app, 96.8% of the limit in aggregate, 0.5% 429s, the smallest share 19.6%. With only a few
  slots per process (eight processes, or a limit of 10) 429s rise to a few percent.
* **No headers, no window.** When answers carry no rate-limit headers, only the concurrency cap holds.
  A 429 then halves the allowed concurrency (down to one) and after that widens a gap between sends;
  each success first narrows the gap, then regrows concurrency by about one per round trip (AIMD).
  ``Retry-After`` pauses every thread of the process, not only the one that was refused.
* **Daily allowance.** When ``X-HubSpot-RateLimit-Daily-Remaining`` minus our sends since that answer falls
  to a small reserve, ``acquire`` raises ``HubSpotDailyLimitError`` instead of sending.

Known limit: a process that starts while another one of the same app already fills the whole window
alone cannot be seen by it (a refused request takes no slot, so it does not show in ``-Remaining``);
it gets in when one of its probes (one per interval) lands in a slot the other has not yet reused,
and from then on the two share as above.

The clock and sleep are injectable, so every rule can be tested without real waiting.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_hubspot_assoc.exceptions import HubSpotDailyLimitError

HEADER_MAX = "X-HubSpot-RateLimit-Max"
HEADER_REMAINING = "X-HubSpot-RateLimit-Remaining"
HEADER_INTERVAL = "X-HubSpot-RateLimit-Interval-Milliseconds"
HEADER_DAILY = "X-HubSpot-RateLimit-Daily"
HEADER_DAILY_REMAINING = "X-HubSpot-RateLimit-Daily-Remaining"

#: HubSpot's largest rolling window (the API add-on): the most requests worth having in flight.
WINDOW_BURST_MAX = 250

_POLL_MIN_S = 0.002
_POLL_MAX_S = 0.05
_NO_HEADER_STREAK_TO_FORGET = 50
_SHARED_MEMORY_INTERVALS = 2.0
# Sharing: churn fades out once the total is this share of the limit below it; growth needs at least
# this many free slots (so that many processes do not all jump into the last one); and a process may
# grow, between two answers, by its share (at least a quarter) of the free slots.
_CHURN_BELOW = 0.1
_GROW_MIN_SLOTS = 2.0
_GROW_MIN_SHARE = 0.02
_STEP_SHARE_FLOOR = 0.25


def _header_int(headers: Mapping[str, Any], name: str) -> int | None:
    """Read an integer header leniently (missing or malformed means unknown)."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Ticket:
    """A permit to send one request; hand it back to ``release`` with the outcome."""

    sent_at: float
    seq: int
    own: int  # our sends in our window (with its margin) when this one left, itself included
    held: int  # the same without the margin: what the server most likely counts for us


class RateLimiter:
    """Adaptive limiter shared by every thread and hook of a process that talks to one HubSpot app.

    :param max_in_flight: concurrency cap (requests sent and not yet answered) while no window is known.
    :param max_burst: concurrency cap while a window is announced (never below ``max_in_flight``);
        None: the window's size, at most ``WINDOW_BURST_MAX``.
    :param clock: monotonic clock in seconds (injectable for tests).
    :param sleep: if given, ``acquire`` waits by calling it instead of waiting on a condition
        (tests with a fake clock).
    :param daily_reserve: daily requests to leave unused; below it ``acquire`` raises.
    :param min_margin_s: the smallest transit margin added to the interval.
    :param max_margin_s: the largest the margin may grow after unexplained 429s.
    :param target_use: share of the announced limit that processes sharing an app steer their total to.
    :param gain_up: growth per interval, as a multiple of the shortfall, while sharing.
    :param gain_down: shrink per interval, as a multiple of the excess times the own share.
    :param churn: extra shrink per interval, times the limit and the square of the own share.
    :param pace: minimum gap between sends while sharing, as a fraction of interval / limit.
    :param ramp: gap between sends during the first interval, as a fraction of interval / limit.
    """

    def __init__(
        self,
        *,
        max_in_flight: int = 8,
        max_burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        daily_reserve: int = 100,
        min_margin_s: float = 0.05,
        max_margin_s: float = 1.0,
        target_use: float = 1.0,
        gain_up: float = 2.0,
        gain_down: float = 2.0,
        churn: float = 0.5,
        pace: float = 0.5,
        ramp: float = 0.12,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight!r}")
        if max_burst is not None and max_burst < 1:
            raise ValueError(f"max_burst must be at least 1 or None, got {max_burst!r}")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self.max_in_flight = max_in_flight
        self.max_burst = WINDOW_BURST_MAX if max_burst is None else max_burst
        self.daily_reserve = daily_reserve
        self._min_margin = min_margin_s
        self._max_margin = max_margin_s
        self._target_use = target_use
        self._gain_up = gain_up
        self._gain_down = gain_down
        self._churn = churn
        self._pace = pace
        self._ramp = ramp
        self._ramp_until = 0.0

        self._in_flight = 0
        self._queue: deque[threading.Condition] = deque()  # threads in ``acquire``, in arrival order
        self._seen_response = False
        self._seq = 0
        self._log: deque[float] = deque()  # send times of our requests still in our window
        self._margin_bump = 0.0

        # The announced window (None until an answer carries the headers).
        self._limit: int | None = None
        self._interval = 10.0
        self._no_header_streak = 0
        self._remaining: int | None = None
        self._level = 1  # alone: how many of our sends may be in the window
        self._foreign = 0
        self._foreign_until = 0.0
        self._foreign_peaks: deque[tuple[float, int]] = deque()
        self._foreign_seen_at = -math.inf

        # Sharing: the steered level, its growth between answers, and when it was last updated.
        self._share_level: float | None = None
        self._grow_rate = 0.0
        self._level_ceiling = 0.0
        self._updated_at = 0.0

        # No window announced: AIMD on concurrency, then on a gap between sends.
        self._concurrency = float(max_in_flight)
        self._gap = 0.0
        self._not_before = 0.0

        self._daily_remaining: int | None = None
        self._daily_sends_since = 0

        self.counters: dict[str, float] = {
            "sent": 0,
            "responses": 0,
            "throttled": 0,
            "throttled_without_headers": 0,
            "waits": 0,
            "wait_seconds": 0.0,
            "daily_stops": 0,
            "concurrency_cuts": 0,
            "margin_bumps": 0,
        }

    # ------------------------------------------------------------------ state
    def ensure_caps(self, max_in_flight: int, max_burst: int | None = None) -> None:
        """Raise the concurrency caps to these (hooks sharing the limiter may ask for different caps)."""
        burst = WINDOW_BURST_MAX if max_burst is None else max_burst
        with self._lock:
            if max_in_flight > self.max_in_flight:
                self._concurrency = min(
                    float(max_in_flight), self._concurrency + max_in_flight - self.max_in_flight
                )
                self.max_in_flight = max_in_flight
                self._wake_next()
            if burst > self.max_burst:
                self.max_burst = burst
                self._wake_next()

    def in_flight_cap(self) -> int:
        """How many requests may be in flight now: how many threads a caller can keep busy."""
        with self._lock:
            return self._cap_locked(self._clock())

    def _cap_locked(self, now: float) -> int:
        if not self._seen_response:
            return 1
        if self._limit is None:
            return max(1, int(self._concurrency))
        # A window is announced: it paces us; as many in flight as we may send in it.
        return max(self.max_in_flight, min(self.max_burst, int(self._current_level(now))))

    @property
    def margin(self) -> float:
        """Seconds added to the interval before one of our sends counts as gone from the server's window."""
        return min(self._max_margin, self._min_margin + self._margin_bump)

    @property
    def sharing(self) -> bool:
        """Whether other processes of the same app were seen recently."""
        return self._share_level is not None

    def snapshot(self) -> dict[str, Any]:
        """Counters and current state, for logs, summaries and tests."""
        with self._lock:
            data: dict[str, Any] = dict(self.counters)
            data.update(
                in_flight=self._in_flight,
                waiting=len(self._queue),
                limit=self._limit,
                interval_s=self._interval,
                remaining=self._remaining,
                foreign=self._foreign,
                sharing=self.sharing,
                share_level=self._share_level,
                concurrency=self._concurrency,
                in_flight_cap=self._cap_locked(self._clock()),
                gap_s=self._gap,
                margin_s=self.margin,
                daily_remaining=self._daily_remaining,
            )
            return data

    # ------------------------------------------------------------------ acquiring
    def try_acquire(self) -> tuple[Ticket | None, float | None]:
        """Take a permit if one is free now; else ``(None, seconds to wait, or None: until a release)``."""
        with self._lock:
            return self._try_locked(self._clock())

    def acquire(self, timeout: float | None = None) -> Ticket | None:
        """Block until a permit is free and take it; None if none is free within ``timeout`` seconds.

        Threads get permits in the order they asked: batches then go out, and are answered, in
        about input order, so a load's in-order commits (and checkpoints) never wait a whole window
        for one early batch that lost a race. Only the first thread in line waits for a permit; the
        others sleep until it is their turn, so a release wakes one thread, not hundreds (a herd of
        woken threads would delay the sends it admits by tens of milliseconds). Raises
        HubSpotDailyLimitError when the daily allowance is nearly used up.
        """
        with self._lock:
            if not self._queue:  # nobody in line: take a free permit at once
                ticket, _ = self._try_locked(self._clock())
                if ticket is not None:
                    return ticket
            turn = threading.Condition(self._lock)
            self._queue.append(turn)
        started: float | None = None
        deadline = None if timeout is None else self._clock() + timeout
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    if self._queue[0] is not turn:
                        if deadline is not None and now >= deadline:
                            return None
                        wait: float | None = None if deadline is None else deadline - now
                    else:
                        ticket, wait, started, expired = self._attempt_locked(now, started, deadline)
                        if ticket is not None or expired:
                            return ticket
                        # A release can free a slot (or bring news) before the time is up.
                        wait = 10 * _POLL_MAX_S if wait is None else wait
                        if deadline is not None:
                            wait = min(wait, deadline - now)
                    if self._sleep is None:
                        turn.wait(timeout=None if wait is None else max(wait, _POLL_MIN_S))
                        continue
                self._sleep(_POLL_MIN_S if wait is None else max(wait, _POLL_MIN_S))
        finally:
            with self._lock:
                if self._queue[0] is turn:
                    self._queue.popleft()
                else:
                    self._queue.remove(turn)
                self._wake_next()

    def _wake_next(self) -> None:
        """Wake the first thread in line (lock held): something changed that may let it send."""
        if self._queue:
            self._queue[0].notify()

    async def aacquire(self, timeout: float | None = None) -> Ticket | None:
        """Async ``acquire``: waits with ``asyncio.sleep``, so the event loop keeps running."""
        started: float | None = None
        deadline = None if timeout is None else self._clock() + timeout
        poll = _POLL_MIN_S
        while True:
            with self._lock:
                ticket, wait, started, expired = self._attempt_locked(self._clock(), started, deadline)
                if ticket is not None or expired:
                    return ticket
            if wait is None:
                await asyncio.sleep(poll)
                poll = min(_POLL_MAX_S, poll * 2)
            else:
                await asyncio.sleep(max(wait, _POLL_MIN_S))

    def _attempt_locked(
        self, now: float, started: float | None, deadline: float | None
    ) -> tuple[Ticket | None, float | None, float | None, bool]:
        """One try of ``acquire``/``aacquire`` (lock held): (ticket, wait, started, deadline passed)."""
        ticket, wait = self._try_locked(now)
        if ticket is not None:
            if started is not None:
                self.counters["wait_seconds"] += now - started
            return ticket, None, started, False
        if started is None:
            started = now
            self.counters["waits"] += 1
        expired = deadline is not None and now + (wait or 0.0) > deadline
        return None, wait, started, expired

    def _expire(self, now: float) -> None:
        horizon = self._interval + self.margin
        log = self._log
        while log and log[0] + horizon <= now:
            log.popleft()

    def _current_level(self, now: float) -> float:
        """How many of our sends may be in the window now (while sharing, it grows between answers)."""
        level = self._share_level
        if level is None:
            return float(self._level)
        if self._grow_rate <= 0:
            return level
        return min(self._level_ceiling, level + self._grow_rate * (now - self._updated_at))

    def _try_locked(self, now: float) -> tuple[Ticket | None, float | None]:
        if self._daily_remaining is not None:
            left = self._daily_remaining - self._daily_sends_since
            if left <= self.daily_reserve:
                self.counters["daily_stops"] += 1
                raise HubSpotDailyLimitError(
                    f"HubSpot's daily request allowance for this app is nearly used up (about {max(0, left)} "
                    f"left, reserve {self.daily_reserve}); stopping instead of burning 429s",
                    status=429,
                    category="DAILY",
                )
        if self._in_flight >= self._cap_locked(now):
            return None, None
        if now < self._not_before:
            return None, self._not_before - now
        limit = self._limit
        if limit is not None:
            self._expire(now)
            own = len(self._log)
            level = self._current_level(now)
            allowed = int(level)
            if (
                allowed <= own < limit
                and now >= self._foreign_until
                and (own == 0 or self._share_level is None)
            ):
                # No news for a whole interval: what we knew of others has left the window. One
                # probe finds out what is left; the next one waits for another interval.
                allowed = own + 1
                self._foreign_until = now + self._interval
            if own >= allowed:
                wait = self._wait_for_room(now, own - allowed + 1)
                if self._grow_rate > 0:
                    wait = min(wait, max(_POLL_MIN_S, (own + 1 - level) / self._grow_rate))
                return None, wait
        self._in_flight += 1
        self._seq += 1
        self._log.append(now)
        self._daily_sends_since += 1
        self.counters["sent"] += 1
        if self._gap:
            self._not_before = now + self._gap
        elif limit is not None and self._share_level is not None and self._pace:
            # Sharing: spread our sends so that our slots, and our news, spread over the window.
            self._not_before = now + self._pace * self._interval / limit
        elif limit is not None and now < self._ramp_until:
            # The first window is filled over a short ramp rather than in one burst, so that other
            # processes of the app starting about now still find room, and are seen, before it is full.
            self._not_before = now + self._ramp * self._interval / limit
        held = len(self._log) - bisect.bisect_right(self._log, now - self._interval)
        return Ticket(sent_at=now, seq=self._seq, own=len(self._log), held=held), None

    def _wait_for_room(self, now: float, needed: int) -> float:
        """Seconds until ``needed`` of our sends have left the window, or the news of others lapses."""
        horizon = self._interval + self.margin
        waits = []
        if self._log:
            # When fewer of our sends are out than would have to leave, the last one leaving is
            # still the next change worth waking up for (the probe rule may then let us send).
            waits.append(self._log[min(needed, len(self._log)) - 1] + horizon - now)
        if self._foreign and now < self._foreign_until:
            waits.append(self._foreign_until - now)
        return max(min(waits), _POLL_MIN_S) if waits else self._interval

    # ------------------------------------------------------------------ releasing
    def release(
        self,
        ticket: Ticket,
        status: int | None,
        headers: Mapping[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        """Hand back a permit with what came of it (``status`` None: no HTTP answer at all)."""
        with self._lock:
            now = self._clock()
            self._in_flight -= 1
            if status is not None:
                self._on_response(ticket, status, headers or {}, retry_after, now)
            self._wake_next()

    def _on_response(
        self, ticket: Ticket, status: int, headers: Mapping[str, Any], retry_after: float | None, now: float
    ) -> None:
        self._seen_response = True
        self.counters["responses"] += 1
        daily_remaining = _header_int(headers, HEADER_DAILY_REMAINING)
        if daily_remaining is not None:
            self._daily_remaining = daily_remaining
            # Our sends after this one may not be in the server's figure yet: count them as used.
            self._daily_sends_since = self._seq - ticket.seq
        throttled = status == 429
        if throttled:
            self.counters["throttled"] += 1
        limit = _header_int(headers, HEADER_MAX)
        if limit is not None and limit > 0:
            if throttled:
                # A refused request takes no slot in HubSpot's window: forget it in ours too.
                with contextlib.suppress(ValueError):
                    self._log.remove(ticket.sent_at)
            self._on_window(ticket, limit, headers, throttled, now)
        else:
            self._no_header_streak += 1
            if self._no_header_streak >= _NO_HEADER_STREAK_TO_FORGET:
                self._forget_window()
            if throttled:
                self.counters["throttled_without_headers"] += 1
                self._back_off(now)
            elif status < 500:
                self._recover()
        if retry_after is not None and retry_after > 0:
            self._not_before = max(self._not_before, now + retry_after)

    def _forget_window(self) -> None:
        """The server stopped announcing a window: only the concurrency cap applies from now on."""
        self._limit = None
        self._remaining = None
        self._foreign = 0
        self._foreign_peaks.clear()
        self._share_level = None
        self._grow_rate = 0.0
        self._log.clear()

    def _on_window(
        self, ticket: Ticket, limit: int, headers: Mapping[str, Any], throttled: bool, now: float
    ) -> None:
        self._no_header_streak = 0
        interval_ms = _header_int(headers, HEADER_INTERVAL)
        if interval_ms is not None and interval_ms > 0:
            self._interval = interval_ms / 1000.0
        if self._limit is None:
            self._ramp_until = now + self._interval
        self._limit = limit
        # An announced window replaces the no-header back-off: the window paces us now.
        self._concurrency = float(self.max_in_flight)
        self._gap = 0.0
        remaining = _header_int(headers, HEADER_REMAINING)
        if remaining is None:
            return
        self._remaining = remaining
        interval = self._interval
        self._expire(now)
        own = len(self._log)
        # The server's count holds our sends that were in the window when this one left and maybe
        # some sent since. Counting all of those as ours gives a floor for others' use (used to tell
        # whether anyone else is there at all); counting the likely ones gives the estimate to share by.
        later = self._seq - ticket.seq
        refused = 1 if throttled else 0
        foreign_floor = max(0, limit - remaining - (ticket.own - refused) - later)
        foreign = max(0, limit - remaining - (ticket.held - refused))
        peaks = self._foreign_peaks
        while peaks and peaks[-1][1] <= foreign:
            peaks.pop()
        peaks.append((now, foreign))
        while peaks[0][0] <= now - interval / 2:
            peaks.popleft()
        foreign = peaks[0][1]
        self._foreign = foreign
        self._foreign_until = now + interval
        if throttled and foreign_floor <= 1 and self._share_level is None:
            # Refused for the one slot our log thought free: either our own send had not left the
            # server's window yet (margin too small) or someone else took the slot. Widen the margin
            # and treat it as a sign of others; later answers tell which it was.
            self._margin_bump = min(self._max_margin, self._margin_bump * 2 + 0.02)
            self.counters["margin_bumps"] += 1
        else:
            self._margin_bump *= 0.995
        if foreign_floor >= 1:
            self._foreign_seen_at = now
        if now - self._foreign_seen_at > _SHARED_MEMORY_INTERVALS * interval:
            # Alone: take whatever the server says is free.
            self._share_level = None
            self._grow_rate = 0.0
            self._level = limit - foreign_floor
            return
        self._steer(own, foreign, limit, throttled, now)

    def _steer(self, own: int, foreign: int, limit: int, throttled: bool, now: float) -> None:
        """Sharing: move our level so that the total nears the target and shares even out (AIMD)."""
        interval = self._interval
        if self._share_level is None:
            level, dt = float(max(own, 1)), 0.0
        else:
            level, dt = self._current_level(now), min(now - self._updated_at, interval)
        self._updated_at = now
        held_now = len(self._log) - bisect.bisect_right(self._log, now - interval)
        shortfall = self._target_use * limit - (held_now + foreign)
        if throttled:
            shortfall = min(shortfall, -0.05 * limit)
        share = own / (own + foreign) if own + foreign else 1.0
        if shortfall < 0:
            level += self._gain_down * shortfall * share * max(dt, interval / limit) / interval
        if foreign:
            # The fuller the window, the more big users give way, for latecomers to grow into.
            fullness = min(1.0, max(0.0, 1.0 - shortfall / (_CHURN_BELOW * limit)))
            level -= self._churn * fullness * share * share * limit * dt / interval
        level = max(0.0, min(float(limit - foreign), level))
        if shortfall >= max(_GROW_MIN_SLOTS, _GROW_MIN_SHARE * limit) and own >= int(level) - 1:
            # Grow in time (between answers too), and only a level we actually use.
            self._grow_rate = self._gain_up * shortfall / interval
            # Between answers grow by at most our part of the shortfall (everyone sees the same one).
            step = max(1.0, shortfall * max(share, _STEP_SHARE_FLOOR))
            self._level_ceiling = min(float(limit - foreign), level + step)
        else:
            self._grow_rate = 0.0
        self._share_level = level
        self._level = int(level)

    def _back_off(self, now: float) -> None:
        """A 429 without window headers: halve concurrency, then widen the gap between sends."""
        self.counters["concurrency_cuts"] += 1
        if self._concurrency > 1.0:
            self._concurrency = max(1.0, self._concurrency / 2)
        else:
            self._gap = min(5.0, max(0.05, self._gap * 2))
        self._not_before = max(self._not_before, now + self._gap)

    def _recover(self) -> None:
        """A success without window headers: narrow the gap first, then regrow concurrency."""
        if self._gap:
            self._gap *= 0.8
            if self._gap < 0.005:
                self._gap = 0.0
        elif self._concurrency < self.max_in_flight:
            self._concurrency = min(float(self.max_in_flight), self._concurrency + 1.0 / self._concurrency)


_registry: dict[str, RateLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(
    host: str, identity: str, *, max_in_flight: int = 8, max_burst: int | None = None, **options: Any
) -> RateLimiter:
    """Return this process's limiter for the app behind ``host`` and credential ``identity``.

    ``options`` (see :class:`RateLimiter`) apply when the limiter is created; later callers share it
    as it is, except that the concurrency caps rise to the largest ones asked for.
    """
    key = f"{host}|{identity}"
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = RateLimiter(
                max_in_flight=max_in_flight, max_burst=max_burst, **options
            )
            return limiter
    limiter.ensure_caps(max_in_flight, max_burst)
    return limiter


def reset_limiters() -> None:
    """Forget every limiter (tests; and a forked child, which must not inherit its parent's state)."""
    global _registry_lock
    _registry.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reset_limiters)
