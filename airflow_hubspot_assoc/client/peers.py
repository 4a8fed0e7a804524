"""The peer board: how many processes on this host want to send to one HubSpot app right now.

Why: HubSpot's answers show how much of the window others used, not how many others there are, and
processes that only see that figure converge to equal shares slowly (several windows, longer than a
typical load). Processes on one host (the tasks of one Airflow worker, or of a LocalExecutor) can
simply say so: each keeps a file named after itself in a folder named after the app (a one-way
fingerprint of host and credential, never the credential) and touches it while it wants to send. A
file touched recently is a peer; the window is then split evenly (``window.py``). Processes on other
hosts do not show here; the window's header-based sharing still covers them.

Cheap by design: a touch and a directory listing at most every ``period_s`` (half a second), not per
request. Any file-system failure (read-only temp dir) makes the board report this process alone.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

#: A peer that has not touched its file for this long no longer wants to send (or is gone).
STALE_AFTER_S = 2.0
#: Files untouched for this long belong to processes that died without cleaning up: removed.
_FORGET_AFTER_S = 3600.0


class PeerBoard(Protocol):
    """Tell the board this process wants to send; learn how many processes do (itself included)."""

    def beat_and_count(self) -> int: ...

    def leave(self) -> None: ...


class NoPeers:
    """No board: this process is alone as far as it knows."""

    def beat_and_count(self) -> int:
        return 1

    def leave(self) -> None:
        return None


class FilePeerBoard:
    """A folder per app under the temp dir, a file per process, its mtime the last wish to send.

    :param key: what identifies the app (host and credential fingerprint); hashed again for the name.
    :param root: the folder holding one sub-folder per app (default: the system's temp dir).
    :param wall: the wall clock (file times are wall-clock times).
    :param member: this process's file name (default: pid and a random suffix).
    """

    def __init__(
        self,
        key: str,
        *,
        root: Path | None = None,
        wall: Callable[[], float] = time.time,
        member: str | None = None,
        period_s: float = 0.5,
    ) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        base = root if root is not None else Path(tempfile.gettempdir()) / "airflow-hubspot-assoc-peers"
        self.folder = base / digest
        self._wall = wall
        self._member = member or f"{os.getpid()}-{secrets.token_hex(4)}"
        self._period = period_s
        self._next_at = -float("inf")
        self._count = 1
        self._registered = False

    @property
    def path(self) -> Path:
        """This process's file."""
        return self.folder / self._member

    def beat_and_count(self) -> int:
        now = self._wall()
        if now < self._next_at:
            return self._count
        self._next_at = now + self._period
        try:
            self._beat(now)
            self._count = max(1, self._live(now))
        except OSError:
            self._count = 1
        return self._count

    def _beat(self, now: float) -> None:
        if not self._registered:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._registered = True
            atexit.register(self.leave)
        path = self.path
        try:
            os.utime(path, (now, now))
        except FileNotFoundError:
            path.touch()
            os.utime(path, (now, now))

    def _live(self, now: float) -> int:
        live = 0
        with os.scandir(self.folder) as entries:
            for entry in entries:
                try:
                    age = now - entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age <= STALE_AFTER_S:
                    live += 1
                elif age > _FORGET_AFTER_S:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
        return live

    def leave(self) -> None:
        """This process no longer wants to send (at exit): take its file off the board."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):  # the last one out removes the app's folder
            self.folder.rmdir()
        self._next_at = -float("inf")
        self._registered = False
