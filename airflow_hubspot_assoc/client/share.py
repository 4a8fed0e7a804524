"""Splitting the window with the peer board's processes while others may show only in the headers.

Why apart from the window: these are the pure rules for processes that know some of their peers (the
board, one host) but not all (other hosts' workers meet them only in HubSpot's counts). Every process
reads the same ``-Remaining``; if each took it as its own budget, N processes would spend the same
free slots N times. So each claims only its part of the free room per answer, and no more than an
even share of the window less a small reserve (the reserve is what lets a refused process on another
host get a request through and be seen at all). When the headers show more use than the board's
peers can hold, there are processes beyond the board: the window is then steered (``steering.py``)
rather than split, since an even split per board would hand out the window once per host.

While sharing, each process also spreads its sends over the window and keeps only a few in flight
(``shared_gap``, ``shared_in_flight``). Why: every decision rests on the last ``-Remaining`` a process
heard, and requests in flight are decisions no one else has heard of yet. Processes that send their
shares in bursts all decide on the same stale count at the same moment (and their slots free again
together an interval later, so the bursts echo); spread out, with answers coming back between sends,
each decision sees the others' latest sends.
"""

from __future__ import annotations

import math

# While sharing: at least this many requests in flight, and twice what our pace needs.
_SHARED_MIN_IN_FLIGHT = 2
_SHARED_IN_FLIGHT_HEADROOM = 2.0

# Use beyond the board's peers' shares below this many slots (or this share of the limit) is noise.
_BEYOND_MIN_SLOTS = 2.0
_BEYOND_MIN_SHARE = 0.02


def board_claim(own: int, foreign: int, limit: int, peers: int) -> float:
    """Our sends allowed in the window until the next answer: what we hold plus our part of the room."""
    return own + max(0, limit - foreign - own) / peers


def board_share(limit: int, peers: int, target_use: float, foreign: int, claim: float) -> float:
    """How many of our sends may be in the window: an even share, within the room and our claim.

    ``foreign`` (others' use, from the headers) holds until an answer says otherwise: a process that
    was refused and hears nothing for an interval has no news that the others left. It probes (see
    ``WindowState.try_send``) instead of sending a whole share into a full window.
    """
    fair = target_use * limit / peers
    return max(0.0, min(fair, float(limit - foreign), claim))


def beyond_board(foreign: int, limit: int, peers: int, target_use: float) -> bool:
    """Whether others' use shows processes the peer board does not (other hosts' workers, pods).

    Once the split has settled the board's other peers hold at most their even shares; anything
    clearly above that was sent by processes that can only be steered against, not split with.
    """
    board_room = target_use * limit * (peers - 1) / peers
    return foreign > board_room + max(_BEYOND_MIN_SLOTS, _BEYOND_MIN_SHARE * limit)


def shared_gap(level: float, limit: int, interval: float, pace: float, spread: float) -> float:
    """Least seconds between two of our sends while sharing: our ``level`` spread over ``spread`` of
    the interval, and never closer than ``pace`` x interval / limit."""
    return max(pace * interval / limit, spread * interval / max(1.0, level))


def shared_in_flight(level: float, interval: float, round_trip: float | None) -> int:
    """How many of our requests may be in flight while sharing: twice what sending ``level`` per
    interval needs at this round-trip time (seconds; None: not yet measured), at least two."""
    if round_trip is None:
        return _SHARED_MIN_IN_FLIGHT
    needed = level * round_trip / interval
    return max(_SHARED_MIN_IN_FLIGHT, math.ceil(_SHARED_IN_FLIGHT_HEADROOM * needed))


class SharedPace:
    """How a sharing process paces itself: the round trip it measures, and the two rules above.

    :param pace: least gap between sends, as a fraction of interval / limit.
    :param spread: with the board's peers, a share (even, or steered) is spread over this share of
        the interval.
    """

    def __init__(self, pace: float, spread: float) -> None:
        self.pace = pace
        self.spread = spread
        self.round_trip: float | None = None  # smoothed seconds from a send to its answer

    def answered(self, took: float) -> None:
        """An answer came ``took`` seconds after its request left."""
        rtt = self.round_trip
        self.round_trip = took if rtt is None else 0.8 * rtt + 0.2 * took

    def in_flight(self, level: float, interval: float) -> int:
        """See ``shared_in_flight``."""
        return shared_in_flight(level, interval, self.round_trip)

    def gap(self, level: float, limit: int, interval: float, peers: int, steered: bool) -> float:
        """Seconds until our next send, sharing with the board's ``peers`` and maybe others.

        With the board's peers alone, an even share (``limit / peers``) spread over the window: the
        share is what each will hold, and a share still being claimed answer by answer then fills in
        time. Steered against other hosts as well, our steered ``level`` (at least half an even share):
        an even share would bunch a smaller level into a burst, and bursts of every process at once
        echo an interval later. Steered without peers, only the pace: AIMD grows only a level in use,
        so a level is not spread thin.
        """
        if peers <= 1:
            return shared_gap(0.0, limit, interval, self.pace, 0.0)
        even = limit / peers
        spread_level = max(level, even / 2) if steered else even
        return shared_gap(spread_level, limit, interval, self.pace, self.spread)
