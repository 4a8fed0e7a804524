"""The batch record: the operator's XCom, read by the sensor, assets, lineage and users' own tasks.

One module owns the contract: the key names, the statuses, the bounds, serialisation to XCom
(:meth:`BatchRecord.to_xcom`) and parsing with errors that say what is wrong
(:meth:`BatchRecord.from_xcom`). The JSON shape is the one the README documents; it mirrors HubSpot's
batch response where it can (``status``, ``requestedAt``, ``startedAt``, ``completedAt``,
``numErrors``, ``errors``) and adds the package's accounting. It never holds the input: XCom lives in
Airflow's metadata database, so every list in it is bounded.

A load's running counts are ``report.LoadReport``, which makes the record. ``operation`` (the writer:
``OPERATIONS``) and other operators' keys (``archived``, ``removed``, ``resolution``, a sync's
``record_sync.SyncCounts``) appear in the JSON only when set, so a create record keeps its shape. An
archive counts removed pairs in ``archived`` (``created`` 0) and samples them, types removed, in ``sample``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.constants import BATCH_STATUSES as STATUSES
from airflow_hubspot_assoc.record_parse import as_list as _list
from airflow_hubspot_assoc.record_parse import count as _count
from airflow_hubspot_assoc.record_parse import load_mapping as _load
from airflow_hubspot_assoc.record_parse import optional_str as _optional_str
from airflow_hubspot_assoc.record_parse import parse_types as _types
from airflow_hubspot_assoc.record_parse import sample_pair as _sample_pair
from airflow_hubspot_assoc.record_sync import SyncCounts

__all__ = [
    "DEFAULT_CATEGORY",
    "MAX_ERRORS",
    "MAX_SAMPLE",
    "MAX_TYPES",
    "OPERATIONS",
    "STATUSES",
    "BatchRecord",
    "utc_now_iso",
]

#: Errors kept in a record, in HubSpot's ``StandardError`` shape.
MAX_ERRORS = 50
#: Created pairs a record samples for the sensor.
MAX_SAMPLE = 100
#: Distinct type combinations a record lists in ``typesUsed``.
MAX_TYPES = 20
#: The operators that write records and what each did, for messages.
PAST_TENSE = {"create": "created", "archive": "archived", "revert": "reverted", "sync": "synced"}
OPERATIONS = tuple(PAST_TENSE)
#: Operations whose records count the pairs they took away in ``archived`` (asset events too).
REMOVERS = ("archive", "revert")
#: Operations whose records may sample pairs whose types must be gone (``removedSample``).
REMOVED_SAMPLERS = ("revert", "sync")
#: The category of a row's bare ``association_type_id`` when the record does not say.
DEFAULT_CATEGORY = "HUBSPOT_DEFINED"
#: Statuses whose record has a ``completedAt``.
FINISHED_STATUSES = ("COMPLETE", "CANCELED")

Types = tuple[AssociationType, ...]


def utc_now_iso() -> str:
    """Now, in the ISO 8601 form HubSpot uses."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class BatchRecord:
    """The operator's batch record; see the README's "The return value (XCom)"."""

    status: str
    from_type: str
    to_type: str
    conn_id: str | None = None
    requested_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    #: The single type every pair used; ``()`` for default associations or mixed types.
    association_types: Types = ()
    #: Every type combination the load used (``typesUsed``); one entry means every pair has it.
    types_used: tuple[Types, ...] = ()
    dry_run: bool = False
    total: int = 0
    created: int = 0
    failed: int = 0
    invalid: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    errors: tuple[dict[str, Any], ...] = ()
    failed_pairs_path: str | None = None
    #: ``{"kind": "path", "path", "fromIdField", "toIdField"}`` or ``{"kind": "xcom", ...}``.
    source: Mapping[str, Any] = field(default_factory=dict)
    #: Up to ``MAX_SAMPLE`` created pairs with their types, which the sensor reads back.
    sample: tuple[AssociationPair, ...] = ()
    #: Batches HubSpot answered PENDING/PROCESSING: ``{"status", "batches", "pairs"}`` each.
    pending: tuple[dict[str, Any], ...] = ()
    #: Whether this try resumed from a checkpoint, and how many rows it skipped for it.
    resumed: bool = False
    resumed_skipped: int = 0
    #: The operator's own type (``defaultTypes``) for rows without type fields; ``None``: not recorded.
    default_types: Types | None = None
    #: The category of a row's bare ``association_type_id`` (``defaultCategory``).
    default_category: str = DEFAULT_CATEGORY
    operation: str = "create"
    #: Counts of later operators; ``None`` (and absent from the JSON) for a create.
    archived: int | None = None
    removed: int | None = None
    #: A revert's pairs whose removed types were created again (``restored``).
    restored: int | None = None
    #: The ledger (issue 14): batch-read requests before the first write, and where it is.
    ledger_reads: int | None = None
    ledger_path: str | None = None
    resolution: Mapping[str, Any] | None = None
    #: A revert's or sync's pairs whose types it removed, with those types (read back for absence).
    removed_sample: tuple[AssociationPair, ...] = ()
    sync: SyncCounts | None = None  # a sync's own keys (``record_sync``); None for other operations

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Batch record status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.operation not in OPERATIONS or (self.operation == "sync") != (self.sync is not None):
            raise ValueError(
                f"Batch record operation must be one of {', '.join(OPERATIONS)} (sync counts exactly "
                f"for sync), got {self.operation!r}{' with' if self.sync else ' without'} sync counts"
            )
        for name, items, bound in (
            ("errors", self.errors, MAX_ERRORS),
            ("sample", self.sample + self.removed_sample, MAX_SAMPLE),
            ("typesUsed", self.types_used, MAX_TYPES),
        ):
            if len(items) > bound:
                raise ValueError(f"Batch record {name} holds at most {bound} entries, got {len(items)}")

    @property
    def written(self) -> int:
        """Pairs the operation applied: ``archived`` for an archive, removed + restored for a revert,
        created + removed for a sync, ``created`` otherwise."""
        if self.operation == "revert":
            return (self.removed or 0) + (self.restored or 0)
        if self.operation == "sync":
            return self.created + (self.removed or 0)
        return (self.archived or 0) if self.operation == "archive" else self.created

    @property
    def num_errors(self) -> int:
        """Pairs that failed or were invalid (HubSpot's ``numErrors``)."""
        return self.failed + self.invalid

    # -- XCom ---------------------------------------------------------------------------------------
    def to_xcom(self) -> dict[str, Any]:
        """The JSON-serialisable XCom value (plain dicts, lists, strings, numbers)."""
        value: dict[str, Any] = {
            "status": self.status,
            "requestedAt": self.requested_at,
            "startedAt": self.started_at,
            "completedAt": self.completed_at,
            "fromObjectType": self.from_type,
            "toObjectType": self.to_type,
            "hubspotConnId": self.conn_id,
            "associationTypes": _specs(self.association_types),
            "typesUsed": [_specs(combo) for combo in self.types_used],
            "dryRun": self.dry_run,
            "total": self.total,
            "created": self.created,
            "failed": self.failed,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "numErrors": self.num_errors,
            "errors": [dict(e) for e in self.errors],
            "failedPairsPath": self.failed_pairs_path,
            "source": dict(self.source),
            "sample": [pair.as_dict() for pair in self.sample],
            "pending": [dict(p) for p in self.pending],
            "resumed": self.resumed,
            "resumedSkipped": self.resumed_skipped,
            "defaultTypes": None if self.default_types is None else _specs(self.default_types),
            "defaultCategory": self.default_category,
        }
        if self.operation != "create":
            value["operation"] = self.operation
        for key, extra in (
            ("archived", self.archived),
            ("removed", self.removed),
            ("restored", self.restored),
            ("ledgerReads", self.ledger_reads),
            ("ledgerPath", self.ledger_path),
        ):
            if extra is not None:
                value[key] = extra
        if self.resolution is not None:
            value["resolution"] = dict(self.resolution)
        if self.removed_sample or self.sync is not None:  # a sync record always has the key
            value["removedSample"] = [pair.as_dict() for pair in self.removed_sample]
        value.update(self.sync.to_xcom() if self.sync is not None else {})
        return value

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any] | str) -> BatchRecord:
        """Parse a record from XCom: a dict or its JSON text (or the Python repr a Jinja template
        renders); raise ``ValueError`` naming what is wrong.

        Keys that only a later version writes (``typesUsed``, ``defaultTypes``, ``resumed``, ...) may
        be missing, so records written by hand or by older versions still parse.
        """
        raw = _load(value)
        from_type, to_type = raw.get("fromObjectType"), raw.get("toObjectType")
        if not isinstance(from_type, str) or not from_type or not isinstance(to_type, str) or not to_type:
            raise ValueError(
                f"Batch record needs fromObjectType and toObjectType, got {from_type!r} and {to_type!r}"
            )
        conn_id = _optional_str(raw, "hubspotConnId")
        association_types = _types(raw.get("associationTypes"), "associationTypes")
        types_used_raw = raw.get("typesUsed")
        if types_used_raw is None:
            types_used: tuple[Types, ...] = (association_types,)
        elif isinstance(types_used_raw, list):
            types_used = tuple(_types(combo, "typesUsed") for combo in types_used_raw)
        else:
            raise ValueError(f"Batch record typesUsed must be a list, got {types_used_raw!r}")
        default_types_raw = raw.get("defaultTypes")
        default_category = raw.get("defaultCategory") or DEFAULT_CATEGORY
        if not isinstance(default_category, str):
            raise ValueError(f"Batch record defaultCategory must be a string, got {default_category!r}")
        errors = _list(raw, "errors")
        sample_types = frozenset(association_types)
        source = raw.get("source")
        source = {} if source is None else source
        if not isinstance(source, Mapping):
            raise ValueError(f"Batch record source must be an object, got {source!r}")
        failed_pairs_path = raw.get("failedPairsPath")
        if failed_pairs_path is not None and (
            not isinstance(failed_pairs_path, str) or not failed_pairs_path
        ):
            raise ValueError(f"Batch record failedPairsPath must be a path, got {failed_pairs_path!r}")
        ledger_path = raw.get("ledgerPath")
        if ledger_path is not None and (not isinstance(ledger_path, str) or not ledger_path):
            raise ValueError(f"Batch record ledgerPath must be a path, got {ledger_path!r}")
        resolution = raw.get("resolution")
        if resolution is not None and not isinstance(resolution, Mapping):
            raise ValueError(f"Batch record resolution must be an object, got {resolution!r}")
        removed_sample = tuple(_sample_pair(item, None) for item in _list(raw, "removedSample"))
        if removed_sample and raw.get("operation") not in REMOVED_SAMPLERS:
            raise ValueError(
                "Batch record removedSample belongs to a revert or sync record (operation 'revert' or 'sync')"
            )
        return cls(
            status=raw.get("status"),  # type: ignore[arg-type]  # checked in __post_init__
            from_type=from_type,
            to_type=to_type,
            conn_id=conn_id or None,
            requested_at=_optional_str(raw, "requestedAt"),
            started_at=_optional_str(raw, "startedAt"),
            completed_at=_optional_str(raw, "completedAt"),
            association_types=association_types,
            types_used=types_used,
            dry_run=bool(raw.get("dryRun", False)),
            total=_count(raw, "total"),
            created=_count(raw, "created"),
            failed=_count(raw, "failed"),
            invalid=_count(raw, "invalid"),
            duplicates=_count(raw, "duplicates"),
            requests=_count(raw, "requests"),
            retries=_count(raw, "retries"),
            throttled=_count(raw, "throttled"),
            errors=tuple(dict(e) if isinstance(e, Mapping) else {"message": str(e)} for e in errors),
            failed_pairs_path=failed_pairs_path,
            source=dict(source),
            sample=tuple(_sample_pair(item, sample_types) for item in _list(raw, "sample")),
            pending=tuple(
                dict(p) if isinstance(p, Mapping) else {"status": str(p)} for p in _list(raw, "pending")
            ),
            resumed=bool(raw.get("resumed", False)),
            resumed_skipped=_count(raw, "resumedSkipped"),
            default_types=None if default_types_raw is None else _types(default_types_raw, "defaultTypes"),
            default_category=default_category,
            operation=str(raw.get("operation") or "create"),
            archived=None if raw.get("archived") is None else _count(raw, "archived"),
            removed=None if raw.get("removed") is None else _count(raw, "removed"),
            restored=None if raw.get("restored") is None else _count(raw, "restored"),
            ledger_reads=None if raw.get("ledgerReads") is None else _count(raw, "ledgerReads"),
            ledger_path=ledger_path,
            resolution=None if resolution is None else dict(resolution),
            removed_sample=removed_sample,
            sync=SyncCounts.from_xcom(raw) if raw.get("operation") == "sync" else None,
        )

    # -- questions the readers ask ------------------------------------------------------------------
    def types_for_untyped_rows(self) -> frozenset[AssociationType] | None:
        """The types of rows that named none themselves; ``None`` when the record cannot tell."""
        if self.default_types is not None:
            return frozenset(self.default_types)
        if len(self.types_used) <= 1:
            return frozenset(self.association_types)
        return None

    def errors_complete(self) -> bool:
        """Whether ``errors`` can hold every error (the record keeps at most ``MAX_ERRORS``)."""
        return len(self.errors) < MAX_ERRORS

    def canceled_reasons(self, limit: int = 10) -> str:
        """HubSpot's reasons for a CANCELED batch, the same reasons merged, at most ``limit`` of them."""
        counts: dict[str, int] = {}
        for error in self.errors:
            category = error.get("category") or error.get("status") or "ERROR"
            message = error.get("message") or "no message"
            text = f"{category}: {message}"
            counts[text] = counts.get(text, 0) + 1
        if not counts:
            return "HubSpot gave no reason"
        items = [f"{text} (x{n})" if n > 1 else text for text, n in list(counts.items())[:limit]]
        more = len(counts) - limit
        if more > 0:
            items.append(f"... and {more} more")
        return "; ".join(items)

    def summary(self) -> str:
        """One line that accounts for every pair of the record."""
        if self.sync is not None:
            counts = (self.total, self.created, self.removed or 0, self.failed, self.invalid, self.duplicates)
            calls = (self.requests, self.retries, self.throttled)
            return f"{self.status}{' (dry run)' if self.dry_run else ''}: {self.sync.summary(counts, calls)}"
        return (
            f"{self.status}{' (dry run)' if self.dry_run else ''}: {self.total:,} pairs read, "
            f"{self.written:,} {PAST_TENSE[self.operation]}, {self.failed:,} failed, "
            f"{self.invalid:,} invalid, "
            f"{self.duplicates:,} duplicates; {self.requests:,} requests, {self.retries:,} retries, "
            f"{self.throttled:,} throttled (429)"
        )

    def event_extra(self) -> dict[str, Any]:
        """The counts an asset event carries for downstream DAGs (``triggering_asset_events``)."""
        return {
            "status": self.status,
            "total": self.total,
            "created": self.created,
            "failed": self.failed,
            "invalid": self.invalid,
            "dryRun": self.dry_run,
            "fromObjectType": self.from_type,
            "toObjectType": self.to_type,
            **({"operation": self.operation, "archived": self.written} if self.operation in REMOVERS else {}),
            **({"operation": "sync", "removed": self.removed or 0} if self.sync is not None else {}),
        }


def _specs(types: Types) -> list[dict[str, str | int]]:
    return [t.as_spec() for t in types]
