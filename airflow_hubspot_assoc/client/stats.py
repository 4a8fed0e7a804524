"""Call counters of one client, shared by its threads (and read by the load through its sender)."""

from __future__ import annotations

import threading


class CallStats:
    """Counters of one client, safe to update from the operator's worker threads."""

    _FIELDS = ("requests", "retries", "throttled", "refreshes", "server_errors", "transport_errors")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.throttled = 0
        self.refreshes = 0
        self.server_errors = 0
        self.transport_errors = 0

    def add(self, **increments: int) -> None:
        """Add to counters by name, atomically."""
        with self._lock:
            for name, value in increments.items():
                if name not in self._FIELDS:
                    raise AttributeError(f"CallStats has no counter {name!r}")
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        """A consistent copy of every counter."""
        with self._lock:
            return {name: getattr(self, name) for name in self._FIELDS}

    def __repr__(self) -> str:
        return f"CallStats({self.snapshot()})"
