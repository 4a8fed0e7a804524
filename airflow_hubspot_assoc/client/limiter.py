"""The permit gate: the threads (and coroutines) of one process take turns at one window state.

Why a gate apart from the window (``window.py``): the window decides *whether* a request may go now
and is pure; the gate decides *who* goes and *how to wait*. It serialises every decision under one
lock, hands permits out in arrival order, wakes one waiter at a time, and tells the peer board
(``peers.py``) that this process wants to send, so that processes of one app on this host split the
window evenly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from airflow_hubspot_assoc.client.peers import NoPeers, PeerBoard
from airflow_hubspot_assoc.client.ticket import Ticket
from airflow_hubspot_assoc.client.window import POLL_MIN_S, WindowState

_POLL_MAX_S = 0.05
# A waiter wakes at least this often, so that its process keeps showing on the peer board while it
# waits for a slot (a window's slot may be seconds away).
_BEAT_S = 0.5


class RateLimiter:
    """Adaptive limiter shared by every thread and hook of a process that talks to one HubSpot app.

    :param clock: monotonic clock in seconds (injectable for tests).
    :param sleep: if given, ``acquire`` waits by calling it instead of waiting on a condition
        (tests with a fake clock).
    :param peers: the board that tells how many processes of the app want to send (none: this one).
    :param window_options: see :class:`~airflow_hubspot_assoc.client.window.WindowState`.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        peers: PeerBoard | None = None,
        **window_options: Any,
    ) -> None:
        self.window = WindowState(**window_options)
        self._clock = clock
        self._sleep = sleep
        self._peers: PeerBoard = peers if peers is not None else NoPeers()
        self._lock = threading.Lock()
        self._queue: deque[threading.Condition] = deque()  # threads in ``acquire``, in arrival order

    # ------------------------------------------------------------------ state
    @property
    def max_in_flight(self) -> int:
        """The concurrency cap while no window is known."""
        return self.window.max_in_flight

    @property
    def max_burst(self) -> int:
        """The concurrency cap while a window is announced."""
        return self.window.max_burst

    @property
    def daily_reserve(self) -> int:
        """Daily requests left unused."""
        return self.window.daily.reserve

    @daily_reserve.setter
    def daily_reserve(self, value: int) -> None:
        with self._lock:
            self.window.daily.reserve = value

    @property
    def margin(self) -> float:
        """See :attr:`WindowState.margin`."""
        return self.window.margin

    @property
    def sharing(self) -> bool:
        """See :attr:`WindowState.sharing`."""
        return self.window.sharing

    def ensure_caps(self, max_in_flight: int, max_burst: int | None = None) -> None:
        """Raise the concurrency caps to these (hooks sharing the limiter may ask for different caps)."""
        with self._lock:
            if self.window.raise_caps(max_in_flight, max_burst):
                self._wake_next()

    def window_announced(self) -> bool:
        """Whether HubSpot's answers announce a rolling window (it then paces the sends)."""
        with self._lock:
            return self.window.limit is not None

    def in_flight_cap(self) -> int:
        """How many requests may be in flight now: how many threads a caller can keep busy."""
        with self._lock:
            return self.window.cap(self._clock())

    def snapshot(self) -> dict[str, Any]:
        """Counters and current state, for logs, summaries and tests."""
        with self._lock:
            data = self.window.snapshot(self._clock())
            data["waiting"] = len(self._queue)
            return data

    def close(self) -> None:
        """This limiter will not send again: take the process off the peer board."""
        self._peers.leave()

    # ------------------------------------------------------------------ acquiring
    def _try_locked(self, now: float) -> tuple[Ticket | None, float | None]:
        self.window.set_peers(self._peers.beat_and_count(), now)
        return self.window.try_send(now)

    def try_acquire(self) -> tuple[Ticket | None, float | None]:
        """Take a permit if one is free now; else ``(None, seconds to wait, or None: until a release)``."""
        with self._lock:
            return self._try_locked(self._clock())

    def acquire(self, timeout: float | None = None) -> Ticket | None:
        """Block until a permit is free and take it; None if none is free within ``timeout`` seconds.

        Threads get permits in the order they asked: batches then go out, and are answered, in
        about input order, so a load's in-order commits never wait a whole window for one early
        batch that lost a race. Only the first thread in line waits for a permit; the others sleep
        until it is their turn, so a release wakes one thread, not hundreds (a herd of woken threads
        would delay the sends it admits by tens of milliseconds). Raises HubSpotDailyLimitError when
        the daily allowance is nearly used up.
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
                        wait = min(_BEAT_S, 10 * _POLL_MAX_S if wait is None else wait)
                        if deadline is not None:
                            wait = min(wait, deadline - now)
                    if self._sleep is None:
                        turn.wait(timeout=None if wait is None else max(wait, POLL_MIN_S))
                        continue
                self._sleep(POLL_MIN_S if wait is None else max(wait, POLL_MIN_S))
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
        poll = POLL_MIN_S
        while True:
            with self._lock:
                ticket, wait, started, expired = self._attempt_locked(self._clock(), started, deadline)
                if ticket is not None or expired:
                    return ticket
            if wait is None:
                await asyncio.sleep(poll)
                poll = min(_POLL_MAX_S, poll * 2)
            else:
                await asyncio.sleep(min(_BEAT_S, max(wait, POLL_MIN_S)))

    def _attempt_locked(
        self, now: float, started: float | None, deadline: float | None
    ) -> tuple[Ticket | None, float | None, float | None, bool]:
        """One try of ``acquire``/``aacquire`` (lock held): (ticket, wait, started, deadline passed)."""
        counters = self.window.counters
        ticket, wait = self._try_locked(now)
        if ticket is not None:
            if started is not None:
                counters["wait_seconds"] += now - started
            return ticket, None, started, False
        if started is None:
            started = now
            counters["waits"] += 1
        expired = deadline is not None and now + (wait or 0.0) > deadline
        return None, wait, started, expired

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
            self.window.release(ticket, status, headers, retry_after, self._clock())
            self._wake_next()
