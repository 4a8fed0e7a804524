"""The rolling-window state machine: what one process may send now, learnt from HubSpot's answers.

Pure: no lock, no thread, no clock of its own. Every method takes ``now``, so a simulation with a fake
clock drives it exactly as the permit gate (``limiter.py``) does. The gate serialises calls.

Why these rules (HubSpot counts requests per app, over a rolling window, across every process):

* **Start careful.** Until the first answer, one request at a time: the limit is unknown. The first
  window is then filled over a short ramp (about a tenth of the interval), so that other processes of
  the app starting at about the same time still find room and are seen.
* **Own sliding log.** Once ``X-HubSpot-RateLimit-Max`` (M) and ``-Interval-Milliseconds`` (I) are
  known, each send is logged; it leaves our window I + margin after it left (the margin covers
  transit jitter and doubles after a 429 our log cannot explain). Alone, that is the fastest legal
  schedule: M sends at once, then one more each time an old one leaves the window.
* **The window, not a concurrency cap, paces a load.** With a window, up to the requests it lets us
  send may be in flight (at most ``max_burst``): sending a window's requests together is what lets a
  load finish in the least time the window allows.
* **Others seen through ``-Remaining``.** What the server counted (M - Remaining) beyond our log was
  sent by other processes of the app: the foreign count F, taken as its peak over half an interval (a
  dip is a slot in transit, not one given up), lapsing after an interval without news. We never let
  our own count exceed M - F.
* **Peers known: equal shares, claimed by parts** (``share.py``). When the peer board
  (``peers.py``) shows other processes of the app that want to send, each may hold an even share of
  the window less a small reserve, never more than M - F, and per answer only its part of the free
  room (all peers read the same ``-Remaining``). F holds until an answer says otherwise: a refused
  newcomer probes rather than send a share into a full window.
* **Peers unknown (other hosts): AIMD** (``steering.py``). Seen only through F (also when F shows
  more than the board's peers can hold: other hosts), each process steers a level so that the total
  approaches M less the reserve and shares even out. After two intervals without others, the whole
  window (or the board's split) again.
* **Sharing spreads sends.** With peers or others seen, a process keeps few requests in flight and
  spreads its sends (with the board's peers, its share over most of the window; ``share.py``):
  decisions then rest on fresh counts, and no burst echoes an interval later.
* **No headers, no window.** Only the concurrency cap holds (``fallback.py``). ``Retry-After``
  pauses every sender of the process.
* **Daily allowance.** When ``X-HubSpot-RateLimit-Daily-Remaining`` minus our sends since that answer
  falls to a reserve, ``try_send`` raises ``HubSpotDailyLimitError`` instead of sending.

Known limit: a process starting while another (on another host) fills the window alone is not seen
by it (a refused request takes no slot); it gets in by a probe (one per interval), then they share.
"""

from __future__ import annotations

import bisect
import contextlib
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from airflow_hubspot_assoc.client.daily import DailyAllowance
from airflow_hubspot_assoc.client.fallback import NoHeaderFallback
from airflow_hubspot_assoc.client.foreign import ForeignPeak
from airflow_hubspot_assoc.client.headers import (
    HEADER_INTERVAL,
    HEADER_MAX,
    HEADER_REMAINING,
    WINDOW_BURST_MAX,
    header_int,
)
from airflow_hubspot_assoc.client.share import SharedPace, beyond_board, board_claim, board_share
from airflow_hubspot_assoc.client.steering import Gains, Steering
from airflow_hubspot_assoc.client.ticket import Ticket

POLL_MIN_S = 0.002
_COUNTERS = ("sent", "responses", "throttled", "throttled_without_headers", "waits", "concurrency_cuts")
_NO_HEADER_STREAK_TO_FORGET = 50
_SHARED_MEMORY_INTERVALS = 2.0


class WindowState:
    """What one process may send now, for one HubSpot app (see the module docs for the rules).

    :param max_in_flight: concurrency cap (requests sent and not yet answered) while no window is known.
    :param max_burst: concurrency cap while a window is announced (never below ``max_in_flight``);
        None: the window's size, at most ``WINDOW_BURST_MAX``.
    :param daily_reserve: daily requests to leave unused; below it ``try_send`` raises.
    :param min_margin_s: the smallest transit margin added to the interval.
    :param max_margin_s: the largest the margin may grow after unexplained 429s.
    :param target_use: share of the announced limit that processes sharing an app steer their total to.
    :param gain_up: growth per interval, as a multiple of the shortfall, while sharing.
    :param gain_down: shrink per interval, as a multiple of the excess times the own share.
    :param churn: extra shrink per interval, times the limit and the square of the own share.
    :param pace: minimum gap between sends while sharing, as a fraction of interval / limit.
    :param spread: with the board's peers, a share's sends are spread over this share of the interval.
    :param share_reserve: share of the limit left unused while sharing it with other processes.
    :param ramp: gap between sends during the first interval, as a fraction of interval / limit.
    """

    def __init__(
        self,
        *,
        max_in_flight: int = 8,
        max_burst: int | None = None,
        daily_reserve: int = 100,
        min_margin_s: float = 0.05,
        max_margin_s: float = 1.0,
        target_use: float = 1.0,
        gain_up: float = 2.0,
        gain_down: float = 2.0,
        churn: float = 0.5,
        pace: float = 0.5,
        spread: float = 0.6,
        ramp: float = 0.12,
        share_reserve: float = 0.05,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight!r}")
        if max_burst is not None and max_burst < 1:
            raise ValueError(f"max_burst must be at least 1 or None, got {max_burst!r}")
        self.max_in_flight = max_in_flight
        self.max_burst = WINDOW_BURST_MAX if max_burst is None else max_burst
        self.daily = DailyAllowance(daily_reserve)
        self._min_margin = min_margin_s
        self._max_margin = max_margin_s
        self._shared_pace = SharedPace(pace, spread)
        self._ramp = ramp
        self._ramp_until = 0.0
        # Processes of this app that want to send now, this one included (from the peer board), and
        # when a change of that number has settled (every peer's sends from before it left the window).
        self.peers = 1
        self._peers_settled_at = 0.0

        self.in_flight = 0
        self._seen_response = False
        self._seq = 0
        self._log: deque[float] = deque()  # send times of our requests still in our window
        self._margin_bump = 0.0

        # The announced window (None until an answer carries the headers).
        self.limit: int | None = None
        self._interval = 10.0
        self._no_header_streak = 0
        self._remaining: int | None = None
        self._level = 1  # alone, or with known peers: how many of our sends may be in the window
        self._foreign = 0
        self._foreign_until = 0.0
        self._foreign_peaks = ForeignPeak()  # F is the peak of these estimates (``foreign.py``)
        self._foreign_seen_at = -math.inf
        self._beyond_seen_at = -math.inf  # when others beyond the board's peers (other hosts) showed
        self._claim = math.inf  # with peers: what we hold plus our part of the room last reported

        # Unknown peers, and shares of the board's: a reserve keeps stale views from overshooting.
        self._steering = Steering(Gains(target_use - share_reserve, gain_up, gain_down, churn))

        self._fallback = NoHeaderFallback(max_in_flight)  # while no window is announced
        self._not_before = 0.0

        self.counters: dict[str, float] = dict.fromkeys(_COUNTERS, 0)
        self.counters.update(wait_seconds=0.0, margin_bumps=0)

    def raise_caps(self, max_in_flight: int, max_burst: int | None = None) -> bool:
        """Raise the concurrency caps to these; True if anything changed (senders may go now)."""
        burst = WINDOW_BURST_MAX if max_burst is None else max_burst
        changed = False
        if max_in_flight > self.max_in_flight:
            self._fallback.raise_max(max_in_flight)
            self.max_in_flight = max_in_flight
            changed = True
        if burst > self.max_burst:
            self.max_burst = burst
            changed = True
        return changed

    def set_peers(self, peers: int, now: float) -> None:
        """Processes of the app that want to send now (this one included), from the peer board."""
        if peers != self.peers:
            # Until the old split's sends have left the window, others' use may exceed their shares.
            self._peers_settled_at = now + self._interval + self.margin + 1.0
            self.peers = peers

    def cap(self, now: float) -> int:
        """How many requests may be in flight now: how many senders a caller can keep busy."""
        if not self._seen_response:
            return 1
        if self.limit is None:
            return self._fallback.cap()
        if self._shares_window():  # few in flight, never more than the caller's cap
            return min(self.max_burst, self._shared_pace.in_flight(self.current_level(now), self._interval))
        # A window is announced: it paces us; as many in flight as we may send in it.
        return max(self.max_in_flight, min(self.max_burst, int(self.current_level(now))))

    def _shares_window(self) -> bool:
        """Whether others of the app are known (the board) or seen (the headers): we then split or steer."""
        return self.limit is not None and (self._steering.active or self.peers > 1)

    def _expire(self, now: float) -> None:
        horizon = self._interval + self.margin
        log = self._log
        while log and log[0] + horizon <= now:
            log.popleft()

    def current_level(self, now: float) -> float:
        """How many of our sends may be in the window now (while sharing, it grows between answers)."""
        if self._steering.active:  # it stops on an answer that shows it is no longer needed
            return self._steering.current(now)
        if self.peers > 1 and self.limit is not None:
            target = self._steering.gains.target_use  # the board shows one host; see ``share.py``
            return board_share(self.limit, self.peers, target, self._foreign, self._claim)
        return float(self._level)

    def try_send(self, now: float) -> tuple[Ticket | None, float | None]:
        """A ticket to send now, or ``(None, seconds to wait, or None: until an answer frees a slot)``."""
        self.daily.check()
        if self.in_flight >= self.cap(now):
            return None, None
        if now < self._not_before:
            return None, self._not_before - now
        limit = self.limit
        if limit is not None:
            self._expire(now)
            own = len(self._log)
            level = self.current_level(now)
            allowed = int(level)
            if (
                allowed <= own < limit
                and now >= self._foreign_until
                and (own == 0 or not self._steering.active)
            ):
                # No news for a whole interval: what we knew of others has left the window. One
                # probe finds out what is left; the next one waits for another interval.
                allowed = own + 1
                self._foreign_until = now + self._interval
            if own >= allowed:
                wait = self._wait_for_room(now, own - allowed + 1)
                grow_rate = self._steering.grow_rate
                if grow_rate > 0:
                    wait = min(wait, max(POLL_MIN_S, (own + 1 - level) / grow_rate))
                return None, wait
        self.in_flight += 1
        self._seq += 1
        self._log.append(now)
        self.daily.on_send()
        self.counters["sent"] += 1
        if self._fallback.gap:
            self._not_before = now + self._fallback.gap
        elif limit is not None and self._shares_window():
            # Sharing: spread our sends so that our slots, and our news, spread over the window.
            level, steered = self.current_level(now), self._steering.active
            self._not_before = now + self._shared_pace.gap(level, limit, self._interval, self.peers, steered)
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
        return max(min(waits), POLL_MIN_S) if waits else self._interval

    def release(
        self,
        ticket: Ticket,
        status: int | None,
        headers: Mapping[str, Any] | None,
        retry_after: float | None,
        now: float,
    ) -> None:
        """A ticket comes back with what came of it (``status`` None: no HTTP answer at all)."""
        self.in_flight -= 1
        if status is not None:
            self._on_response(ticket, status, headers or {}, retry_after, now)

    @property
    def margin(self) -> float:
        """Seconds added to the interval before one of our sends counts as gone from the server's window."""
        return min(self._max_margin, self._min_margin + self._margin_bump)

    @property
    def sharing(self) -> bool:
        """Whether other processes of the same app were seen recently (and steered against)."""
        return self._steering.active

    def snapshot(self, now: float) -> dict[str, Any]:
        """Counters and current state, for logs, summaries and tests."""
        data: dict[str, Any] = dict(self.counters)
        data.update(
            in_flight=self.in_flight,
            limit=self.limit,
            interval_s=self._interval,
            remaining=self._remaining,
            foreign=self._foreign,
            peers=self.peers,
            level=self.current_level(now),
            sharing=self.sharing,
            share_level=self._steering.level,
            concurrency=self._fallback.concurrency,
            in_flight_cap=self.cap(now),
            gap_s=self._fallback.gap,
            margin_s=self.margin,
            daily_remaining=self.daily.remaining,
            daily_stops=self.daily.stops,
        )
        return data

    def _on_response(
        self, ticket: Ticket, status: int, headers: Mapping[str, Any], retry_after: float | None, now: float
    ) -> None:
        self._seen_response = True
        self.counters["responses"] += 1
        self._shared_pace.answered(max(0.0, now - ticket.sent_at))
        self.daily.on_answer(headers, self._seq - ticket.seq)
        throttled = status == 429
        if throttled:
            self.counters["throttled"] += 1
        limit = header_int(headers, HEADER_MAX)
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
                self.counters["concurrency_cuts"] += 1
                self._not_before = max(self._not_before, now + self._fallback.on_throttled())
            elif status < 500:
                self._fallback.on_success()
        if retry_after is not None and retry_after > 0:
            self._not_before = max(self._not_before, now + retry_after)

    def _forget_window(self) -> None:
        """The server stopped announcing a window: only the concurrency cap applies from now on."""
        self.limit = None
        self._remaining = None
        self._foreign = 0
        self._foreign_peaks.clear()
        self._steering.stop()
        self._log.clear()

    def _on_window(
        self, ticket: Ticket, limit: int, headers: Mapping[str, Any], throttled: bool, now: float
    ) -> None:
        self._no_header_streak = 0
        interval_ms = header_int(headers, HEADER_INTERVAL)
        if interval_ms is not None and interval_ms > 0:
            self._interval = interval_ms / 1000.0
        if self.limit is None:
            self._ramp_until = now + self._interval
        self.limit = limit
        # An announced window replaces the no-header back-off: the window paces us now.
        self._fallback.reset()
        remaining = header_int(headers, HEADER_REMAINING)
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
        foreign = self._foreign_peaks.update(now, foreign, interval)
        self._foreign = foreign
        self._foreign_until = now + interval
        if throttled and foreign_floor <= 1 and not self._steering.active:
            # Refused for the one slot our log thought free: either our own send had not left the
            # server's window yet (margin too small) or someone else took the slot. Widen the margin
            # and treat it as a sign of others; later answers tell which it was.
            self._margin_bump = min(self._max_margin, self._margin_bump * 2 + 0.02)
            self.counters["margin_bumps"] += 1
        else:
            self._margin_bump *= 0.995
        if foreign_floor >= 1:
            self._foreign_seen_at = now
        if self.peers > 1:
            self._claim = board_claim(own, foreign, limit, self.peers)
            # Before the split settles, the board's peers may still hold more than their shares.
            target = self._steering.gains.target_use
            if now >= self._peers_settled_at and beyond_board(foreign, limit, self.peers, target):
                self._beyond_seen_at = now
            if now - self._beyond_seen_at > _SHARED_MEMORY_INTERVALS * interval:
                # Only the board's peers: an equal share each (``current_level``); no steering needed.
                self._steering.stop()
                return
        if now - self._foreign_seen_at > _SHARED_MEMORY_INTERVALS * interval:
            # Alone: take whatever the server says is free.
            self._steering.stop()
            self._level = limit - foreign_floor
            return
        held_now = len(self._log) - bisect.bisect_right(self._log, now - interval)
        self._level = self._steering.update(now, own, held_now, foreign, limit, interval, throttled)
