"""Progress lines for long loads: done, total, rate, ETA and 429s, at most every few seconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ProgressReporter:
    """Log progress no more often than every ``interval`` seconds, so a million pairs stay readable."""

    def __init__(
        self,
        log: logging.Logger,
        total: int | None,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._total = total
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._last = self._started

    def update(self, done: int, throttled: int, *, force: bool = False) -> None:
        """Log one line if the interval has passed (or ``force``)."""
        now = self._clock()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        self._log.info("%s", self.describe(done, throttled, now))

    def describe(self, done: int, throttled: int, now: float | None = None) -> str:
        """One human line: ``12,300 of 100,000 pairs (12.3%), 2,450 pairs/s, ETA 36 s, 429s: 0``."""
        elapsed = max((self._clock() if now is None else now) - self._started, 1e-9)
        rate = done / elapsed
        if self._total:
            text = f"{done:,} of {self._total:,} pairs ({100 * done / self._total:.1f}%)"
        else:
            text = f"{done:,} pairs"
        text += f", {rate:,.0f} pairs/s"
        if self._total and rate > 0 and done < self._total:
            text += f", ETA {(self._total - done) / rate:,.0f} s"
        return text + f", 429s so far: {throttled}"
