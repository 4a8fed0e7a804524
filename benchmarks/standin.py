"""Run the HubSpot stand-in in its own process (its CLI) for the length of one benchmark case.

Why a separate process: the stand-in burns CPU answering requests; in the client's process it would
be counted as the client's cost and would compete for the client's GIL. Its own CPU use is sampled
too (from ``/proc`` through ``psutil``), because on a two-core machine a busy stand-in can become the
bottleneck, and a reader of the results must be able to tell when it was.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import requests

from airflow_hubspot_assoc.testing.process import start_standin_process

STARTUP_TIMEOUT_S = 60.0


class StandInProcess:
    """The stand-in CLI as a context manager: start, learn its URL and token, read its counters, stop."""

    def __init__(self, config: dict[str, Any], workdir: Path, name: str) -> None:
        self.config = config
        self.workdir = workdir
        self.name = name
        self.url = ""
        self.token = ""
        self.connection = ""
        self._proc: subprocess.Popen[str] | None = None
        self._session = requests.Session()
        #: When the last client on this stand-in finished (epoch seconds), if any.
        self.last_request_at: float | None = None

    def __enter__(self) -> StandInProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc, announced = start_standin_process(
            self.config,
            self.workdir / f"{self.name}.standin.json",
            self.workdir / f"{self.name}.standin.log",
            timeout_s=STARTUP_TIMEOUT_S,
        )
        self.url = announced["url"].rstrip("/")
        self.token = announced["token"]
        self.connection = announced["connection"]
        self._ps = psutil.Process(self._proc.pid)
        self._cpu_mark = self._cpu()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._session.close()

    @property
    def window_s(self) -> float:
        """The rate-limit window in seconds, or 0 when no limit applies."""
        limit = self.config.get("rate_limit")
        return float(limit.get("interval_ms", 10_000)) / 1000.0 if limit else 0.0

    def wait_for_empty_window(self) -> None:
        """Sleep until the previous client's requests have left the rate-limit window.

        ``reset`` zeroes counters but not the limiter: a client started right after another would
        otherwise meet the previous one's last window and be charged 429s it did not cause.
        """
        if self.last_request_at is not None and self.window_s:
            time.sleep(max(0.0, self.last_request_at + self.window_s + 0.5 - time.time()))

    @property
    def pid(self) -> int:
        """The stand-in's process id."""
        assert self._proc is not None
        return self._proc.pid

    def _cpu(self) -> float:
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def cpu_since_mark(self, *, reset: bool = True) -> float:
        """CPU seconds the stand-in used since the last mark (start, or the previous call)."""
        now = self._cpu()
        spent = now - self._cpu_mark
        if reset:
            self._cpu_mark = now
        return spent

    def stats(self) -> dict[str, Any]:
        """The stand-in's counters (requests, 429s, inputs, associations written, ...)."""
        response = self._session.get(f"{self.url}/__standin__/stats", timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def reset(self) -> None:
        """Zero the counters and the request log between two clients on the same stand-in."""
        response = self._session.post(f"{self.url}/__standin__/reset", timeout=30)
        response.raise_for_status()
