"""Others' use of the app's window (the foreign count F), as the peak of recent estimates.

Why a peak: a dip in what other processes seem to hold is most often a slot in transit, not one given
up; taking the peak over half an interval keeps us from claiming such a slot the moment it looks free.
Apart from the window because it is a plain sliding maximum, with state of its own.
"""

from __future__ import annotations

from collections import deque


class ForeignPeak:
    """The largest foreign count reported over the last half interval; pure state."""

    def __init__(self) -> None:
        # (when, count), counts strictly decreasing from the oldest: each entry is the peak from its
        # time on, so the first one is the peak of the whole span.
        self._peaks: deque[tuple[float, int]] = deque()

    def update(self, now: float, foreign: int, interval: float) -> int:
        """Add the estimate ``foreign`` taken at ``now``; the peak since ``now - interval / 2``."""
        peaks = self._peaks
        while peaks and peaks[-1][1] <= foreign:
            peaks.pop()
        peaks.append((now, foreign))
        while peaks[0][0] <= now - interval / 2:
            peaks.popleft()
        return peaks[0][1]

    def clear(self) -> None:
        """The server stopped announcing a window: what was seen of others no longer applies."""
        self._peaks.clear()
