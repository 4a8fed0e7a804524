"""Seeded fault injection: 5xx answers, dropped connections, slow answers, 429 storms.

A request's fate is drawn from a hash of the seed, the request (method, path, body) and how many
times that same request was seen before. Two runs with the same seed and the same requests see
the same faults, whatever order concurrent requests arrive in, and a retried request draws anew
(so a client that retries can get through).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from airflow_hubspot_assoc.testing.config import FaultConfig


@dataclass(frozen=True)
class Fault:
    """An injected failure: ``kind`` is ``5xx``, ``reset`` or ``slow``; ``status`` for ``5xx``."""

    kind: str
    status: int = 0


class FaultInjector:
    """Decides the faults of API requests and keeps the 429 storm schedule."""

    def __init__(self, config: FaultConfig, started: float | None = None) -> None:
        self._config = config
        self._seed = str(config.seed).encode()
        self._lock = threading.Lock()
        self._seen: dict[bytes, int] = {}
        self._started = time.monotonic() if started is None else started
        self._storm_until = 0.0

    def decide(self, method: str, path: str, body: bytes) -> Fault | None:
        """The fault for this request, if any (never for requests once faults are all off)."""
        cfg = self._config
        if not cfg.enabled:
            return None
        request_digest = hashlib.blake2b(
            b"%s %s\n%s" % (method.encode(), path.encode(), body), digest_size=16
        )
        key = request_digest.digest()
        with self._lock:
            attempt = self._seen.get(key, 0)
            self._seen[key] = attempt + 1
        draw = hashlib.blake2b(b"%s|%s|%d" % (self._seed, key, attempt), digest_size=16).digest()
        u = int.from_bytes(draw[:8], "big") / 2**64
        if u < cfg.error_5xx_ratio:
            statuses = cfg.error_5xx_statuses
            return Fault("5xx", statuses[int.from_bytes(draw[8:], "big") % len(statuses)])
        u -= cfg.error_5xx_ratio
        if u < cfg.reset_ratio:
            return Fault("reset")
        u -= cfg.reset_ratio
        if u < cfg.slow_ratio:
            return Fault("slow")
        return None

    def start_storm(self, seconds: float) -> None:
        """Answer every API request with 429 for the next ``seconds``."""
        with self._lock:
            self._storm_until = max(self._storm_until, time.monotonic() + seconds)

    def storm_active(self, now: float | None = None) -> bool:
        """Whether a storm (started by hand, or periodic from the config) is on now."""
        now = time.monotonic() if now is None else now
        if now < self._storm_until:
            return True
        every, duration = self._config.storm_every_s, self._config.storm_duration_s
        if every <= 0 or duration <= 0:
            return False
        elapsed = now - self._started
        return elapsed >= every and (elapsed % every) < duration
