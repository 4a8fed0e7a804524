"""Checkpoints that let a retried task resume a load instead of sending it all again.

A load is cut into segments of consecutive input rows (see ``load.py``); a checkpoint says "every row
before row N is accounted for" and holds the record so far. It lives in storage every worker can reach
(a local path on a shared volume or any object-storage URL), keyed by DAG, run, task and map index, so
the retry may run on another worker. Failed pairs confirmed before the checkpoint are kept as part files
beside it, because object stores cannot append. Everything is removed when the load succeeds.

Checkpoints are written as the load commits, off the load's thread (:class:`CheckpointSaver`): one
write in flight, and the states committed meanwhile coalesce into the next write. So a checkpoint
trails the load by at most one write, whatever the store's latency, and the load never waits for it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

from airflow_hubspot_assoc import storage

STATE_FILE = "state.json"
#: Folders of a checkpoint's key below the base (dag, run, task, map index).
KEY_DEPTH = 4
#: Pause after a failed checkpoint write before the next try.
RETRY_PAUSE_S = 1.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def checkpoint_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """A path-safe key for one task instance (retries of the same instance share it)."""
    parts = [dag_id, run_id, task_id, f"map_{map_index}" if map_index >= 0 else "unmapped"]
    return "/".join(_UNSAFE.sub("_", part) for part in parts)


class CheckpointStore:
    """Read and write one task instance's checkpoint under ``base``/``key``.

    The state is one file (``state.json``) replaced whole on every write; failed pairs go to part
    files that the state lists, written before the state that names them.
    """

    def __init__(
        self, base: str, key: str, *, owns_base: bool = False, log: logging.Logger | None = None
    ) -> None:
        self.location = f"{base.rstrip('/')}/{key}"
        self.log = log or logging.getLogger(__name__)
        #: Folders below ``base`` to remove once empty; the base too when the package chose it.
        self._folders = KEY_DEPTH + (1 if owns_base else 0)
        self._parts: list[str] = []

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none (a first try, or a finished load)."""
        text = storage.read_text(f"{self.location}/{STATE_FILE}")
        if text is None:
            return None
        state: dict[str, Any] = json.loads(text)
        self._parts = list(state.get("failedParts", []))
        return state

    def matching_state(self, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        """The saved state when it was written for this input (same fingerprint); else None, with a
        warning when a state for another input is ignored."""
        state = self.load()
        if state is not None and state.get("fingerprint") != fingerprint:
            self.log.warning(
                "Ignoring the checkpoint at %s: it was written for another input (%s, now %s).",
                self.location,
                state.get("fingerprint"),
                fingerprint,
            )
            return None
        return state

    def failed_entries(self, state: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The failed pairs confirmed before the checkpoint, in order."""
        for name in state.get("failedParts", []):
            text = storage.read_text(f"{self.location}/{name}")
            if text is None:
                raise FileNotFoundError(f"{self.location}/{name}, listed by the checkpoint, is missing")
            for line in text.splitlines():
                if line.strip():
                    yield json.loads(line)

    def write_part(self, entries: list[dict[str, Any]]) -> None:
        """Write failed pairs as a new part file; the next state written lists it."""
        name = f"failed-{len(self._parts):06d}.jsonl"
        with storage.open_for_write(f"{self.location}/{name}") as handle:
            handle.writelines(json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries)
        self._parts.append(name)

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace the state atomically (readers see the previous or this one, never a part)."""
        body = json.dumps({**state, "failedParts": list(self._parts)}, separators=(",", ":"))
        storage.replace_text(f"{self.location}/{STATE_FILE}", body)

    def save(self, state: dict[str, Any], new_failed: list[dict[str, Any]]) -> None:
        """Write the failed pairs since the last save as a new part, then the state that lists it.

        The state is written last, so a crash in between leaves the previous checkpoint valid.
        """
        if new_failed:
            self.write_part(new_failed)
        self.write_state(state)

    def clear(self) -> None:
        """Remove the checkpoint once the load has succeeded; never fails the load.

        The state goes first: without it nothing resumes from the parts, should one be left behind.
        On local disk the key's folders are removed too, as far up as they are empty.
        """
        folder = storage.location(self.location)
        state = folder / STATE_FILE
        if not storage.delete_quietly(state, self.log):
            return
        for child in storage.files_under(folder):
            storage.delete_quietly(child, self.log)
        storage.remove_empty_folders(self.location, self._folders)


class CheckpointSaver:
    """Saves checkpoints on a thread of its own: one write in flight, later states coalesce.

    The load hands over each state it commits with the failed pairs committed since the previous
    hand-over (:meth:`submit`, cheap, never blocks on storage). The writer takes the newest state and
    every failed pair handed over since its last write. A write that fails is logged and retried with
    the next state: failed pairs stay queued until the part holding them is written, so a later state
    never names rows whose failures are not in a part.
    """

    def __init__(self, store: CheckpointStore, log: logging.Logger) -> None:
        self.store = store
        self.log = log
        self.writes = 0
        self.write_errors = 0
        self._lock = threading.Condition()
        self._state: dict[str, Any] | None = None
        self._failed: list[dict[str, Any]] = []
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, state: dict[str, Any], new_failed: list[dict[str, Any]]) -> None:
        """Queue the newest state and the failed pairs committed since the last call."""
        with self._lock:
            if self._closed:
                return
            self._state = state
            self._failed.extend(new_failed)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hubspot-checkpoint", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until everything submitted so far is written (or ``timeout``); True when it is."""
        with self._lock:
            return self._lock.wait_for(lambda: self._state is None and not self._busy, timeout)

    def close(self, *, discard: bool = False, timeout: float = 60.0) -> None:
        """Stop the writer: write what is queued first unless ``discard``; then take no more states.

        Discarding still waits for a write in flight, so nothing is written after this returns
        (the load's success then clears the checkpoint without a late write bringing it back).
        """
        with self._lock:
            if discard:
                self._state, self._failed = None, []
        if not discard and not self.flush(timeout):
            self.log.warning("The last checkpoint was not written within %.0f s.", timeout)
        with self._lock:
            self._closed = True
            self._state, self._failed = None, []
            self._lock.notify_all()
            self._lock.wait_for(lambda: not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._state is not None or self._closed)
                if self._closed:
                    return
                state, failed = self._state, self._failed
                self._state, self._failed, self._busy = None, [], True
            assert state is not None
            part_written, state_written = self._write(state, failed)
            with self._lock:
                self._busy = False
                if not state_written and not self._closed:
                    # Retry with the newest state; failed pairs not yet in a part go first.
                    self._state = self._state or state
                    if not part_written:
                        self._failed = failed + self._failed
                self._lock.notify_all()
                if not state_written:
                    self._lock.wait_for(lambda: self._closed, RETRY_PAUSE_S)

    def _write(self, state: dict[str, Any], failed: list[dict[str, Any]]) -> tuple[bool, bool]:
        """Write one checkpoint; say whether the failed pairs' part and the state were written."""
        part_written = not failed
        try:
            if failed:
                self.store.write_part(failed)
                part_written = True
            self.store.write_state(state)
        except Exception as err:  # storage hiccups must not stop the load; the next write retries
            self.write_errors += 1
            self.log.warning(
                "Could not write the checkpoint at %s (%s: %s); retrying with the next one.",
                self.store.location,
                type(err).__name__,
                err,
            )
            return part_written, False
        self.writes += 1
        return True, True
