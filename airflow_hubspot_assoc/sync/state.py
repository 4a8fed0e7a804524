"""Where a sync keeps what it last applied: the layout of ``state_path``, its pointer, lease and history.

Layout (every name below ``state_path``; local disk or any object-storage URL)::

    state.json                   the pointer: current generation, its snapshot object, run history
    snapshot-00000007.bin        one snapshot per generation, written under a new name, never replaced
    lease.json                   who is running a sync on this state_path now, until when
    plans/plan-....json          dry-run plans (see ``plan``) with their creates/removals/forget sets
    runs/<run key>/...           one run's own plan (for a retry to resume exactly), checkpoints, failures
    failed/<run key>.jsonl       the pairs of a run that HubSpot refused (kept for the user)

Why a pointer and not "the newest snapshot file": object stores have no atomic rename and listing is
eventually consistent on some of them, but replacing one small object is atomic everywhere. A new
snapshot is written under a new name first and the pointer replaced after it, so a reader sees either
the old generation or the new one, never a part, and a crash in between leaves the old state valid
(the orphan snapshot is overwritten by the next commit of that generation).

Two runs at once (the lease). Object storage has no locks, and s3fs sends no conditional put by
default, so the lease is *write, wait, read back and compare*: a run reads ``lease.json``; if
another owner holds an unexpired lease it fails before any write. Otherwise it writes its own lease
(with a random token), waits ``settle_seconds`` and reads it back: if another run's token is there,
the other run won and this one fails, before any write. The race window: run B reads "no lease"
before run A writes, and B's write lands after A has already read its own lease back (B's gap
between read and write is longer than A's settle time). Both then believe they hold the lease. The
generation check at commit catches that case: a commit replaces the pointer only if the generation is
still the one the run started from and the lease still names the run, so the second run to finish
fails and its snapshot never becomes current (but the HubSpot writes it already made stay made; they
are idempotent creates/removals of the same desired state, and the next run's diff accounts for them).
The check-then-replace of the pointer itself is not atomic either; the window there is one read and
one small write. A retry of the same task instance (same DAG, run, task and map index) takes over its
own earlier lease: Airflow never runs two tries of one task instance at once.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.exceptions import HubSpotError

STATE_FILE = "state.json"
LEASE_FILE = "lease.json"
#: Runs the pointer remembers (newest last).
MAX_HISTORY = 50
#: How long a lease holds without renewal; a run renews it between its phases.
DEFAULT_LEASE_SECONDS = 2 * 3600.0
#: How long a run waits after writing its lease before reading it back.
DEFAULT_SETTLE_SECONDS = 0.5
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


class SyncConflictError(HubSpotError):
    """Another run holds this ``state_path``, or the state moved on under this run."""


def run_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """A name-safe key for one task instance (its retries share it)."""
    parts = [dag_id, run_id, task_id, f"map_{map_index}" if map_index >= 0 else "unmapped"]
    return "--".join(_UNSAFE.sub("_", part) for part in parts)


def snapshot_name(generation: int) -> str:
    """The object name of a generation's snapshot."""
    return f"snapshot-{generation:08d}.bin"


@dataclass(frozen=True)
class Pointer:
    """``state.json``: the current generation (0: nothing applied yet), its snapshot and the history."""

    generation: int = 0
    snapshot: str | None = None
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps(
            {"generation": self.generation, "snapshot": self.snapshot, "history": list(self.history)},
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, text: str, where: str) -> Pointer:
        try:
            raw = json.loads(text)
            generation = int(raw["generation"])
            snapshot = raw.get("snapshot")
            history = tuple(dict(item) for item in raw.get("history") or ())
        except (ValueError, KeyError, TypeError) as err:
            raise HubSpotError(f"The sync state {where} is not a sync pointer ({err})") from err
        if generation < 0 or (generation > 0 and not isinstance(snapshot, str)):
            raise HubSpotError(f"The sync state {where} names no snapshot for generation {generation}")
        return cls(generation, snapshot, history)


class SyncState:
    """One ``state_path``: read the pointer, hold the lease, and commit a new generation.

    :param owner: the run key of the task instance (see :func:`run_key`).
    """

    def __init__(
        self,
        state_path: str,
        owner: str,
        *,
        log: logging.Logger | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not state_path or not str(state_path).strip():
            raise HubSpotError("state_path must name a folder or object-storage prefix")
        self.base = str(state_path).rstrip("/")
        self.owner = owner
        self.log = log or logging.getLogger(__name__)
        self.lease_seconds = lease_seconds
        self.settle_seconds = settle_seconds
        self._clock = clock
        self._sleep = sleep
        self._token: str | None = None

    def path(self, name: str) -> str:
        """The full path or URL of ``name`` under ``state_path``."""
        return f"{self.base}/{name}"

    def run_folder(self) -> str:
        """Where this run keeps its own plan, checkpoints and failures."""
        return self.path(f"runs/{self.owner}")

    # -- the pointer ----------------------------------------------------------------------------------
    def read_pointer(self) -> Pointer:
        """The current pointer; generation 0 when the sync never committed."""
        where = self.path(STATE_FILE)
        text = storage.read_text(where)
        return Pointer() if text is None else Pointer.parse(text, where)

    def snapshot_location(self, pointer: Pointer) -> str | None:
        """The full location of the pointer's snapshot, or None for generation 0."""
        return None if pointer.snapshot is None else self.path(pointer.snapshot)

    # -- the lease ------------------------------------------------------------------------------------
    def _read_lease(self) -> dict[str, Any] | None:
        text = storage.read_text(self.path(LEASE_FILE))
        if text is None:
            return None
        try:
            lease: dict[str, Any] = json.loads(text)
        except ValueError:
            return None  # a lease cut short by a crash holds nothing
        return lease

    def _write_lease(self) -> None:
        assert self._token is not None
        lease = {"owner": self.owner, "token": self._token, "expiresAt": self._clock() + self.lease_seconds}
        storage.replace_text(self.path(LEASE_FILE), json.dumps(lease))

    def acquire(self) -> None:
        """Take the lease before any write, or raise :class:`SyncConflictError` saying who holds it."""
        held = self._read_lease()
        if held is not None and held.get("owner") != self.owner and self._live(held):
            raise SyncConflictError(self._held_message(held))
        self._token = uuid.uuid4().hex
        self._write_lease()
        self._sleep(self.settle_seconds)
        self.check_lease()
        self.log.info("Holding the sync lease on %s.", self.base)

    def check_lease(self) -> None:
        """Raise :class:`SyncConflictError` unless the lease still holds this run's token."""
        held = self._read_lease()
        if held is None or held.get("token") != self._token:
            raise SyncConflictError(
                self._held_message(held)
                if held is not None
                else f"The sync lease on {self.base} was removed while this run held it; nothing more is "
                "written. Check that one sync only runs on this state_path at a time."
            )

    def renew(self) -> None:
        """Check the lease and extend it, between the phases of a long run."""
        self.check_lease()
        self._write_lease()

    def release(self) -> None:
        """Give the lease up (only this run's own); never fails the run."""
        if self._token is None:
            return
        held = self._read_lease()
        if held is not None and held.get("token") == self._token:
            storage.delete_quietly(storage.location(self.path(LEASE_FILE)), self.log)
        self._token = None

    def _live(self, lease: dict[str, Any]) -> bool:
        try:
            return float(lease.get("expiresAt", 0)) > self._clock()
        except (TypeError, ValueError):
            return False

    def _held_message(self, lease: dict[str, Any]) -> str:
        until = lease.get("expiresAt")
        left = f"{max(0.0, float(until) - self._clock()):.0f} s" if isinstance(until, int | float) else "?"
        return (
            f"Another sync run ({lease.get('owner')}) holds the lease on {self.base} (for {left} more); "
            "this run wrote nothing. One sync runs per state_path at a time: wait for the other run, or, "
            f"if it died, delete {self.path(LEASE_FILE)} once it is certainly gone."
        )

    # -- commit ---------------------------------------------------------------------------------------
    def check_generation(self, base_generation: int) -> Pointer:
        """The pointer, when it still is at ``base_generation``; else raise (the state moved on)."""
        pointer = self.read_pointer()
        if pointer.generation != base_generation:
            raise SyncConflictError(
                f"The sync state {self.base} moved on from generation {base_generation} to "
                f"{pointer.generation} during this run (another run committed); this run's snapshot is "
                "not applied. The next run diffs against the new state."
            )
        return pointer

    def commit(
        self, base_generation: int, write_snapshot: Callable[[str, int], object], run: dict[str, Any]
    ) -> int:
        """Write the next generation's snapshot, then replace the pointer; return the new generation.

        :param write_snapshot: ``(location, generation)`` -> writes the snapshot object there.
        :param run: this run's entry in the history (counts; the generation is added).
        """
        self.check_lease()
        pointer = self.check_generation(base_generation)
        generation = base_generation + 1
        name = snapshot_name(generation)
        write_snapshot(self.path(name), generation)
        # The read-back just before the replace narrows the window to one small write.
        self.check_lease()
        self.check_generation(base_generation)
        history = (*pointer.history, {**run, "generation": generation})[-MAX_HISTORY:]
        storage.replace_text(self.path(STATE_FILE), Pointer(generation, name, history).to_json())
        self.log.info("Sync state %s is at generation %d (%s).", self.base, generation, name)
        return generation

    def remove_run_files(self) -> None:
        """Delete this run's own folder (plan copy, checkpoints) after a commit; never fails the run."""
        folder = storage.location(self.run_folder())
        for child in storage.files_under(folder):
            storage.delete_quietly(child, self.log)
        storage.remove_empty_folders(self.run_folder(), 2)

    def delete_snapshot(self, name: str | None) -> None:
        """Remove an old generation's snapshot once a newer pointer is in place."""
        if name:
            storage.delete_quietly(storage.location(self.path(name)), self.log)
