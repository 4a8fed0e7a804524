"""Sharing a window with processes that only show through HubSpot's headers (other hosts): AIMD.

Why apart from the window: it is one pure rule, easy to reason about and to tune on its own. Each
process caps its own count at a level it steers so that the total (own + foreign) nears the limit:
while at least two slots are free, every process grows at the same pace (continuously in time, and
by at most its part of the free slots between two answers, so that processes seeing the same room do
not all jump into it); above the limit, each shrinks in proportion to its share; and when the window
is (nearly) full, each sheds a little more in proportion to the square of its share (``churn``), so a
big user keeps making room that a latecomer grows into. Equal additive growth with share-proportional
decrease converges to equal shares while the total stays just under the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

# Churn fades out once the total is this share of the limit below it; growth needs at least this many
# free slots (so that many processes do not all jump into the last one); and a process may grow,
# between two answers, by its share (at least a quarter) of the free slots.
_CHURN_BELOW = 0.1
_GROW_MIN_SLOTS = 2.0
_GROW_MIN_SHARE = 0.02
_STEP_SHARE_FLOOR = 0.1


@dataclass(frozen=True)
class Gains:
    """The steering's constants (see ``WindowState``'s parameters)."""

    target_use: float = 1.0
    gain_up: float = 2.0
    gain_down: float = 2.0
    churn: float = 0.5


@dataclass(frozen=True)
class Steered:
    """The new level, how fast it may grow until the next answer, and up to where."""

    level: float
    grow_rate: float
    ceiling: float


def steer(
    *,
    level: float,
    dt: float,
    own: int,
    held_now: int,
    foreign: int,
    limit: int,
    interval: float,
    throttled: bool,
    gains: Gains,
) -> Steered:
    """Move ``level`` (our sends allowed in the window) after an answer ``dt`` seconds after the last.

    :param own: our sends in our window (with its margin); ``held_now``: those the server still counts.
    :param foreign: others' sends in the window, as estimated from the headers.
    """
    shortfall = gains.target_use * limit - (held_now + foreign)
    if throttled:
        shortfall = min(shortfall, -0.05 * limit)
    share = own / (own + foreign) if own + foreign else 1.0
    if shortfall < 0:
        level += gains.gain_down * shortfall * share * max(dt, interval / limit) / interval
    if foreign:
        # The fuller the window, the more big users give way, for latecomers to grow into.
        fullness = min(1.0, max(0.0, 1.0 - shortfall / (_CHURN_BELOW * limit)))
        level -= gains.churn * fullness * share * share * limit * dt / interval
    level = max(0.0, min(float(limit - foreign), level))
    if shortfall >= max(_GROW_MIN_SLOTS, _GROW_MIN_SHARE * limit) and own >= int(level) - 1:
        # Grow in time (between answers too), and only a level we actually use; between answers by
        # at most our part of the shortfall (everyone sees the same one).
        step = max(1.0, shortfall * max(share, _STEP_SHARE_FLOOR))
        return Steered(level, gains.gain_up * shortfall / interval, min(float(limit - foreign), level + step))
    return Steered(level, 0.0, 0.0)


class Steering:
    """The steered level between answers: it grows in time at ``grow_rate`` up to ``ceiling``."""

    def __init__(self, gains: Gains) -> None:
        self.gains = gains
        self.level: float | None = None  # None: not sharing with unknown peers
        self.grow_rate = 0.0
        self.ceiling = 0.0
        self.updated_at = 0.0

    @property
    def active(self) -> bool:
        """Whether others were seen recently and the level is being steered."""
        return self.level is not None

    def stop(self) -> None:
        """Alone again, or peers known: the window is no longer steered."""
        self.level = None
        self.grow_rate = 0.0

    def current(self, now: float) -> float:
        """How many of our sends may be in the window now."""
        level = self.level
        assert level is not None
        if self.grow_rate <= 0:
            return level
        return min(self.ceiling, level + self.grow_rate * (now - self.updated_at))

    def update(
        self, now: float, own: int, held_now: int, foreign: int, limit: int, interval: float, throttled: bool
    ) -> int:
        """Steer after an answer (see ``steer``); returns the new level, whole."""
        if self.level is None:
            level, dt = float(max(own, 1)), 0.0
        else:
            level, dt = self.current(now), min(now - self.updated_at, interval)
        self.updated_at = now
        steered = steer(
            level=level,
            dt=dt,
            own=own,
            held_now=held_now,
            foreign=foreign,
            limit=limit,
            interval=interval,
            throttled=throttled,
            gains=self.gains,
        )
        self.level, self.grow_rate, self.ceiling = steered.level, steered.grow_rate, steered.ceiling
        return int(steered.level)
