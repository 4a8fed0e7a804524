"""The keys only a sync record has (``operation: "sync"``), parsed as strictly as the rest of the record.

Apart from ``record`` so that the batch record's module stays about the batch record; ``record`` owns
the contract and embeds these keys in its JSON only for a sync. The removed pairs the sensor checks are
gone are the record's top-level ``removedSample`` (shared with the revert), not a key of this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_hubspot_assoc.record_parse import count as _count


@dataclass(frozen=True)
class SyncCounts:
    """``unchanged``, ``planned`` ``{creates, removals}``, ``snapshotPairs`` (after the run; before it
    for a dry run), ``reconciled`` (batch-read requests of the reconcile), ``planPath`` (the plan a dry
    run wrote, or the one applied) and ``generation`` (of the state after the run)."""

    unchanged: int = 0
    planned_creates: int = 0
    planned_removals: int = 0
    snapshot_pairs: int = 0
    reconciled: int = 0
    plan_path: str | None = None
    generation: int = 0

    def to_xcom(self) -> dict[str, Any]:
        """The sync's keys of the record's JSON."""
        return {
            "unchanged": self.unchanged,
            "planned": {"creates": self.planned_creates, "removals": self.planned_removals},
            "snapshotPairs": self.snapshot_pairs,
            "reconciled": self.reconciled,
            "planPath": self.plan_path,
            "generation": self.generation,
        }

    @classmethod
    def from_xcom(cls, raw: Mapping[str, Any]) -> SyncCounts:
        """Parse a sync record's own keys; ``ValueError`` names the bad one."""
        planned = raw.get("planned")
        if not isinstance(planned, Mapping):
            raise ValueError(f"Batch record planned must be an object {{creates, removals}}, got {planned!r}")
        plan_path = raw.get("planPath")
        if plan_path is not None and (not isinstance(plan_path, str) or not plan_path):
            raise ValueError(f"Batch record planPath must be a path, got {plan_path!r}")
        return cls(
            unchanged=_count(raw, "unchanged"),
            planned_creates=_count(planned, "creates", "planned.creates"),
            planned_removals=_count(planned, "removals", "planned.removals"),
            snapshot_pairs=_count(raw, "snapshotPairs"),
            reconciled=_count(raw, "reconciled"),
            plan_path=plan_path,
            generation=_count(raw, "generation"),
        )

    def summary(self, counts: tuple[int, ...], calls: tuple[int, int, int]) -> str:
        """The record's one line for a sync: ``counts`` = (total, created, removed, failed, invalid,
        duplicates), ``calls`` = (requests, retries, throttled)."""
        total, created, removed, failed, invalid, duplicates = counts
        requests, retries, throttled = calls
        return (
            f"sync of {total:,} rows read: {created:,} created, {removed:,} removed, {self.unchanged:,} "
            f"unchanged, {failed:,} failed, {invalid:,} invalid, {duplicates:,} duplicates (planned "
            f"{self.planned_creates:,} creates, {self.planned_removals:,} removals); snapshot "
            f"{self.snapshot_pairs:,} pairs; {requests:,} requests ({self.reconciled:,} reconcile reads), "
            f"{retries:,} retries, {throttled:,} throttled (429)"
        )
