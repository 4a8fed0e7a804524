"""Counters and the request log of a stand-in, safe to update from many handler threads."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

# Enough messages to debug a failure without letting a million-request benchmark grow memory.
_MAX_MESSAGES = 200


@dataclass(frozen=True)
class LoggedRequest:
    """One entry of the stand-in's request log: a request as the stand-in saw it.

    ``status`` 0 means the connection was dropped. ``started``/``finished`` are epoch seconds;
    ``headers`` has the Authorization value redacted.
    """

    method: str
    path: str
    endpoint: str
    status: int
    n_inputs: int
    started: float
    finished: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stats:
    """What the stand-in has served; read attributes directly, or :meth:`to_dict` for JSON.

    ``by_endpoint_status`` is keyed by ``(endpoint, status)``; ``faults_injected`` by fault kind
    (``5xx``, ``reset``, ``slow``, ``storm_429``). ``spec_violations`` counts invalid requests
    (the client's bug), ``response_violations`` invalid answers (the stand-in's bug).
    """

    requests_total: int = 0
    by_endpoint_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    rate_limited: int = 0
    spec_violations: int = 0
    spec_violation_messages: list[str] = field(default_factory=list)
    response_violations: int = 0
    response_violation_messages: list[str] = field(default_factory=list)
    concurrency: int = 0
    peak_concurrency: int = 0
    inputs_received: int = 0
    write_requests: int = 0
    read_requests: int = 0
    associations_written: int = 0
    associations_archived: int = 0
    oauth_refreshes: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def enter(self) -> None:
        """A request started being handled."""
        with self.lock:
            self.concurrency += 1
            self.peak_concurrency = max(self.peak_concurrency, self.concurrency)

    def leave(self) -> None:
        """A request finished (answered or dropped)."""
        with self.lock:
            self.concurrency -= 1

    def add(self, **increments: int) -> None:
        """Add to integer counters by name, atomically."""
        with self.lock:
            for name, value in increments.items():
                setattr(self, name, getattr(self, name) + value)

    def record_answer(self, endpoint: str, status: int) -> None:
        with self.lock:
            self.requests_total += 1
            self.by_endpoint_status[(endpoint, status)] += 1
            if status == 429:
                self.rate_limited += 1

    def record_fault(self, kind: str) -> None:
        with self.lock:
            self.faults_injected[kind] += 1

    def record_spec_violation(self, where: str, messages: list[str]) -> None:
        with self.lock:
            self.spec_violations += 1
            self._keep(self.spec_violation_messages, where, messages)

    def record_response_violation(self, where: str, messages: list[str]) -> None:
        with self.lock:
            self.response_violations += 1
            self._keep(self.response_violation_messages, where, messages)

    @staticmethod
    def _keep(bucket: list[str], where: str, messages: list[str]) -> None:
        for message in messages:
            if len(bucket) >= _MAX_MESSAGES:
                return
            bucket.append(f"{where}: {message}")

    def reset(self) -> None:
        """Zero every counter (the in-flight count, which is live state, is kept)."""
        with self.lock:
            in_flight = self.concurrency
            fresh = Stats()
            for name in self._fields():
                setattr(self, name, getattr(fresh, name))
            self.concurrency = in_flight
            self.peak_concurrency = in_flight

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot; ``by_endpoint_status`` keys become ``"endpoint:status"``."""
        with self.lock:
            data = {name: getattr(self, name) for name in self._fields()}
            data["by_endpoint_status"] = {
                f"{e}:{s}": n for (e, s), n in sorted(self.by_endpoint_status.items())
            }
            data["faults_injected"] = dict(self.faults_injected)
            data["spec_violation_messages"] = list(self.spec_violation_messages)
            data["response_violation_messages"] = list(self.response_violation_messages)
        return data

    @classmethod
    def _fields(cls) -> list[str]:
        return [name for name in cls.__dataclass_fields__ if name != "lock"]


class RequestLog:
    """A bounded log of :class:`LoggedRequest` (the oldest fall off)."""

    def __init__(self, maxlen: int) -> None:
        self._records: deque[LoggedRequest] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def append(self, request: LoggedRequest) -> None:
        with self._lock:
            self._records.append(request)

    def snapshot(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def request_to_dict(request: LoggedRequest) -> dict[str, Any]:
    """A JSON-ready copy of a logged request."""
    return asdict(request)


#: The former name (before "record" came to mean only the operator's batch record).
RequestRecord = LoggedRequest
