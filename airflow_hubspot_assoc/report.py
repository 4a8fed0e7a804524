"""The load's running report: counts and bounded samples built up batch by batch, saved in checkpoints,
and turned into the batch record (:class:`airflow_hubspot_assoc.record.BatchRecord`) at the end.

The bounds (``MAX_ERRORS``, ``MAX_SAMPLE``, ``MAX_TYPES``) and the record's shape belong to
``record``; this module only fills them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType, Types
from airflow_hubspot_assoc.batches import BatchOutcome, Failure, Item, combined_status
from airflow_hubspot_assoc.record import (
    FINISHED_STATUSES,
    MAX_ERRORS,
    MAX_SAMPLE,
    MAX_TYPES,
    BatchRecord,
    utc_now_iso,
)


def pair_entry(item: Item) -> dict[str, Any]:
    """A pair as the sensor reads it back: ids and the types it was created with (the sample shape)."""
    return {"from": item.pair.from_id, "to": item.pair.to_id, "types": [t.as_spec() for t in item.types]}


@dataclass
class LoadReport:
    """Counts and bounded samples of one load, built up batch by batch."""

    from_type: str
    to_type: str
    conn_id: str
    source: dict[str, Any]
    requested_at: str = field(default_factory=utc_now_iso)
    dry_run: bool = False
    failed_pairs_path: str | None = None
    total: int = 0
    #: Pairs the batches applied (created, or archived for an archive).
    created: int = 0
    failed: int = 0
    invalid: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    types: list[Types] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    pending_pairs: dict[str, int] = field(default_factory=dict)
    started_at: str | None = None
    completed_at: str | None = None
    #: The operator's own type for rows without type fields (``DEFAULT_ASSOCIATION`` for the default).
    default_types: Types = ()
    default_category: str = "HUBSPOT_DEFINED"
    #: ``create`` or ``archive``: an archive's applied pairs (``created`` here) go to ``archived``.
    operation: str = "create"
    #: Request counters of earlier tries (restored from a checkpoint), added to this try's.
    base_requests: int = 0
    base_retries: int = 0
    base_throttled: int = 0

    _SAVED = (
        "requested_at",
        "created",
        "failed",
        "invalid",
        "duplicates",
        "requests",
        "retries",
        "throttled",
        "errors",
        "sample",
        "statuses",
        "pending_pairs",
        "started_at",
        "completed_at",
    )

    def snapshot(self) -> dict[str, Any]:
        """What a checkpoint keeps of the record (plain JSON values)."""
        state = {name: getattr(self, name) for name in self._SAVED}
        state["types"] = [[list(t) for t in combo] for combo in self.types]
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's snapshot; this try's request counters add to the saved ones."""
        for name in self._SAVED:
            setattr(self, name, state[name])
        self.types = [tuple(AssociationType(*t) for t in combo) for combo in state["types"]]
        self.base_requests, self.base_retries, self.base_throttled = (
            self.requests,
            self.retries,
            self.throttled,
        )

    def note_types(self, types: Types) -> None:
        """Remember a type combination used (bounded), for the record and dry runs."""
        if types not in self.types and len(self.types) < MAX_TYPES:
            self.types.append(types)

    def add_error(self, error: dict[str, Any]) -> None:
        """Keep an error in HubSpot's shape, up to ``MAX_ERRORS``."""
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)

    def add_unresolved(self, failures: Sequence[Failure]) -> None:
        """Account for pairs that failed before any batch: their business keys did not resolve."""
        for failure in failures:
            self.failed += 1
            self.add_error(
                {"category": failure.category, "message": failure.message, "context": failure.detail}
            )

    def add_outcome(self, outcome: BatchOutcome) -> None:
        """Account for one batch's answer."""
        self.statuses[outcome.status] = self.statuses.get(outcome.status, 0) + 1
        self.created += len(outcome.created)
        self.failed += len(outcome.failures)
        if outcome.status in ("PENDING", "PROCESSING"):
            self.pending_pairs[outcome.status] = self.pending_pairs.get(outcome.status, 0) + len(
                outcome.created
            )
        for item in outcome.created:
            if len(self.sample) >= MAX_SAMPLE:
                break
            self.sample.append(pair_entry(item))
        for error in outcome.errors:
            self.add_error(error)
        if outcome.started_at and (self.started_at is None or outcome.started_at < self.started_at):
            self.started_at = outcome.started_at
        if outcome.completed_at and (self.completed_at is None or outcome.completed_at > self.completed_at):
            self.completed_at = outcome.completed_at

    @property
    def status(self) -> str:
        """COMPLETE only when every batch answered COMPLETE (see ``combined_status``)."""
        return combined_status(self.statuses)

    def to_record(self, *, resumed_skipped: int = 0) -> BatchRecord:
        """The batch record of the load so far; ``resumed_skipped``: rows a resumed try skipped."""
        status = self.status
        archive = self.operation == "archive"
        types = self.types[0] if len(self.types) == 1 else ()
        return BatchRecord(
            status=status,
            requested_at=self.requested_at,
            started_at=self.started_at or self.requested_at,
            completed_at=(self.completed_at or utc_now_iso()) if status in FINISHED_STATUSES else None,
            from_type=self.from_type,
            to_type=self.to_type,
            conn_id=self.conn_id,
            association_types=types,
            types_used=tuple(self.types),
            dry_run=self.dry_run,
            total=self.total,
            created=0 if archive else self.created,
            archived=self.created if archive else None,
            operation=self.operation,
            failed=self.failed,
            invalid=self.invalid,
            duplicates=self.duplicates,
            requests=self.requests,
            retries=self.retries,
            throttled=self.throttled,
            errors=tuple(self.errors),
            failed_pairs_path=self.failed_pairs_path,
            source=self.source,
            sample=tuple(_sample_pair(entry) for entry in self.sample),
            pending=tuple(
                {"status": name, "batches": self.statuses[name], "pairs": self.pending_pairs.get(name, 0)}
                for name in ("PENDING", "PROCESSING")
                if name in self.statuses
            ),
            resumed=resumed_skipped > 0,
            resumed_skipped=resumed_skipped,
            default_types=self.default_types,
            default_category=self.default_category,
        )


def _sample_pair(entry: dict[str, Any]) -> AssociationPair:
    types = frozenset(
        AssociationType(t["associationCategory"], t["associationTypeId"]) for t in entry["types"]
    )
    return AssociationPair(entry["from"], entry["to"], types)
