"""Where failed and invalid pairs go: a JSON Lines file (any object-storage URL) and a bounded sample.

Every pair that does not land is written here with HubSpot's reason, so that a data engineer can fix
and re-send exactly those. Without a path only the first ``keep`` are kept (for the log and the
record) and the rest are counted.
"""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from airflow_hubspot_assoc.storage import open_for_write

if TYPE_CHECKING:
    from airflow_hubspot_assoc.batches import Failure
    from airflow_hubspot_assoc.pairs import InvalidRow

INVALID_CATEGORY = "INVALID_INPUT"


class FailedPairsSink:
    """Collect failed pairs: stream them to ``path`` when given, keep the first ``keep`` either way."""

    def __init__(self, path: str | None, *, keep: int = 100) -> None:
        self.path = path
        self.keep = keep
        self.kept: list[dict[str, Any]] = []
        self.failed = 0
        self.invalid = 0
        self._file: IO[str] | None = None

    def add_failure(self, failure: Failure) -> dict[str, Any]:
        """Record a pair that HubSpot refused (or that a canceled batch carried); return its entry."""
        pair = failure.pair
        entry: dict[str, Any] = {
            "from_id": pair.from_id,
            "to_id": pair.to_id,
            "category": failure.category,
            "message": failure.message,
        }
        if failure.correlation_id:
            entry["correlationId"] = failure.correlation_id
        if failure.detail:
            entry.update(failure.detail)
        if pair.source != "pairs":
            entry["source"] = pair.source
        entry["line"] = pair.line
        self.add_entry(entry)
        return entry

    def add_invalid(self, row: InvalidRow) -> dict[str, Any]:
        """Record a row that failed the package's own validation; return its entry."""
        entry: dict[str, Any] = {
            "from_id": row.from_id,
            "to_id": row.to_id,
            "category": INVALID_CATEGORY,
            "message": row.reason,
            "field": row.field,
        }
        if row.source != "pairs":
            entry["source"] = row.source
        entry["line"] = row.line
        self.add_entry(entry)
        return entry

    def add_entry(self, entry: dict[str, Any]) -> None:
        """Record one failed-pair entry (also those an earlier try confirmed, when resuming)."""
        if entry["category"] == INVALID_CATEGORY:
            self.invalid += 1
        else:
            self.failed += 1
        if len(self.kept) < self.keep:
            self.kept.append(entry)
        if self.path is None:
            return
        if self._file is None:
            self._file = open_for_write(self.path)
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        """Flush and close the file (an empty file is written when a path was given and nothing failed)."""
        if self.path is not None and self._file is None:
            self._file = open_for_write(self.path)
        if self._file is not None:
            self._file.close()
            self._file = None
