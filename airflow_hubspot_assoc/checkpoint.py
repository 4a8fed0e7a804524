"""Checkpoints that let a retried task resume a load instead of sending it all again.

A load is cut into segments of consecutive input rows (see ``load.py``); a checkpoint says "every row
before row N is accounted for" and holds the record so far. It lives in storage every worker can reach
(a local path on a shared volume or any object-storage URL), keyed by DAG, run, task and map index, so
the retry may run on another worker. Failed pairs confirmed before the checkpoint are kept as part files
beside it, because object stores cannot append. Everything is removed when the load succeeds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_hubspot_assoc.failed_pairs import open_for_write

STATE_FILE = "state.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def checkpoint_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """A path-safe key for one task instance (retries of the same instance share it)."""
    parts = [dag_id, run_id, task_id, f"map_{map_index}" if map_index >= 0 else "unmapped"]
    return "/".join(_UNSAFE.sub("_", part) for part in parts)


def _location(path: str) -> Any:
    if "://" in path:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(path)
    return Path(path)


class CheckpointStore:
    """Read and write one task instance's checkpoint under ``base``/``key``."""

    def __init__(self, base: str, key: str) -> None:
        self.location = f"{base.rstrip('/')}/{key}"
        self._dir = _location(self.location)
        self._parts: list[str] = []

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none (a first try, or a finished load)."""
        state_path = self._dir / STATE_FILE
        if not state_path.exists():
            return None
        with state_path.open("r", encoding="utf-8") as handle:
            state: dict[str, Any] = json.load(handle)
        self._parts = list(state.get("failedParts", []))
        return state

    def failed_entries(self, state: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The failed pairs confirmed before the checkpoint, in order."""
        for name in state.get("failedParts", []):
            with (self._dir / name).open("r", encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        yield json.loads(line)

    def save(self, state: dict[str, Any], new_failed: list[dict[str, Any]]) -> None:
        """Write the failed pairs since the last save as a new part, then the state that lists it.

        The state is written last, so a crash in between leaves the previous checkpoint valid.
        """
        if new_failed:
            name = f"failed-{len(self._parts):06d}.jsonl"
            with open_for_write(f"{self.location}/{name}") as handle:
                handle.writelines(json.dumps(entry, separators=(",", ":")) + "\n" for entry in new_failed)
            self._parts.append(name)
        state["failedParts"] = list(self._parts)
        body = json.dumps(state, separators=(",", ":"))
        if isinstance(self._dir, Path):
            self._dir.mkdir(parents=True, exist_ok=True)
            temporary = self._dir / f".{STATE_FILE}.tmp"
            temporary.write_text(body, encoding="utf-8")
            temporary.replace(self._dir / STATE_FILE)
        else:
            with open_for_write(f"{self.location}/{STATE_FILE}") as handle:
                handle.write(body)

    def clear(self) -> None:
        """Remove the checkpoint once the load has succeeded."""
        if not self._dir.exists():
            return
        for child in self._dir.iterdir():
            child.unlink()
        self._dir.rmdir()
