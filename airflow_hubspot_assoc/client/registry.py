"""One limiter per HubSpot app per process.

Why: HubSpot counts requests per app (private-app token or OAuth client), not per hook or thread, so
every hook and thread of a process that uses the same host and credential takes its permits from one
limiter, keyed by host and a one-way fingerprint of the credential. A forked child starts afresh:
its parent's permits and news are not its own.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from airflow_hubspot_assoc.client.limiter import RateLimiter
from airflow_hubspot_assoc.client.peers import FilePeerBoard

_registry: dict[str, RateLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(
    host: str, identity: str, *, max_in_flight: int = 8, max_burst: int | None = None, **options: Any
) -> RateLimiter:
    """Return this process's limiter for the app behind ``host`` and credential ``identity``.

    ``options`` (see :class:`RateLimiter`) apply when the limiter is created; later callers share it
    as it is, except that the concurrency caps rise to the largest ones asked for. Unless ``options``
    name a ``peers`` board, the limiter shows itself on this host's file board for the app.
    """
    key = f"{host}|{identity}"
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            options.setdefault("peers", FilePeerBoard(key))
            limiter = _registry[key] = RateLimiter(
                max_in_flight=max_in_flight, max_burst=max_burst, **options
            )
            return limiter
    limiter.ensure_caps(max_in_flight, max_burst)
    return limiter


def reset_limiters() -> None:
    """Forget every limiter and take this process off the peer boards (tests, between cases)."""
    with _registry_lock:
        limiters = list(_registry.values())
        _registry.clear()
    for limiter in limiters:
        limiter.close()


def _after_fork_in_child() -> None:
    """A forked child must not inherit its parent's state, nor take its parent off the boards."""
    global _registry_lock
    _registry.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
