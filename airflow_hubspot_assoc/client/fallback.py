"""Pacing without a window: when HubSpot's answers carry no rate-limit headers (a proxy, a stand-in).

Why apart from the window: it is a different controller (AIMD on concurrency, then on a gap between
sends) that only applies until the server announces a window. A 429 halves the allowed concurrency
(down to one) and after that widens a gap between sends; each success first narrows the gap, then
regrows concurrency by about one per round trip.
"""

from __future__ import annotations


class NoHeaderFallback:
    """Concurrency and send gap while no window is known; pure state."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.concurrency = float(max_in_flight)
        self.gap = 0.0

    def raise_max(self, max_in_flight: int) -> None:
        """A hook sharing the limiter asks for more concurrency: grant the difference."""
        self.concurrency = min(float(max_in_flight), self.concurrency + max_in_flight - self.max_in_flight)
        self.max_in_flight = max_in_flight

    def reset(self) -> None:
        """A window is announced: it paces from now on."""
        self.concurrency = float(self.max_in_flight)
        self.gap = 0.0

    def cap(self) -> int:
        """Requests that may be in flight."""
        return max(1, int(self.concurrency))

    def on_throttled(self) -> float:
        """A 429 without headers: halve concurrency, then widen the gap; returns the gap to keep."""
        if self.concurrency > 1.0:
            self.concurrency = max(1.0, self.concurrency / 2)
        else:
            self.gap = min(5.0, max(0.05, self.gap * 2))
        return self.gap

    def on_success(self) -> None:
        """A success without headers: narrow the gap first, then regrow concurrency."""
        if self.gap:
            self.gap *= 0.8
            if self.gap < 0.005:
                self.gap = 0.0
        elif self.concurrency < self.max_in_flight:
            self.concurrency = min(float(self.max_in_flight), self.concurrency + 1.0 / self.concurrency)
