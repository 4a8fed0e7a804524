"""Judging a read-back: which expected association pairs HubSpot shows, shared by sensor and trigger.

Pure values and functions, no I/O: the sensor (in the worker) and the trigger (in the triggerer) judge
what ``batch/read`` returned in exactly the same way, and the rules can be tested without a server.

Rules:

* A pair is confirmed when HubSpot lists an association from ``from_id`` to ``to_id`` that carries
  every expected ``(category, typeId)``; extra types (such as the unlabelled default HubSpot adds next
  to a label) do not matter.
* A pair created as a default association (``types: []``) accepts any type.
* Pairs the operator reported as failed are never waited for.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: ``(associationCategory, associationTypeId)``, the identity of an association type.
TypeKey = tuple[str, int]

#: The batch statuses the operator can record.
STATUSES = ("COMPLETE", "PROCESSING", "PENDING", "CANCELED")
#: How much the sensor reads back.
VERIFY_MODES = ("sample", "all", "none")
#: HubSpot's batch read takes at most this many from-ids per request.
MAX_FROM_IDS_PER_READ = 1_000
#: How many pairs one read-back step judges at most (bounds memory when from-ids repeat a lot).
MAX_PAIRS_PER_CHUNK = 5_000
#: How many missing pairs error messages and events name.
MISSING_SAMPLE_LIMIT = 20
#: How many of HubSpot's reasons a CANCELED failure quotes.
REASON_LIMIT = 10


def type_keys(types: Iterable[Mapping[str, Any]] | None) -> frozenset[TypeKey]:
    """Normalise association types to ``(category, type id)`` keys.

    Accepts the create shape (``associationCategory`` / ``associationTypeId``) and the read shape
    (``category`` / ``typeId``).
    """
    keys: set[TypeKey] = set()
    for item in types or ():
        if not isinstance(item, Mapping):
            raise ValueError(f"An association type must be an object, got {item!r}")
        category = item.get("associationCategory", item.get("category"))
        type_id = item.get("associationTypeId", item.get("typeId"))
        if not isinstance(category, str) or not category:
            raise ValueError(f"Association type without a category: {dict(item)!r}")
        if isinstance(type_id, bool) or not isinstance(type_id, int | str):
            raise ValueError(f"Association type without a numeric type id: {dict(item)!r}")
        try:
            keys.add((category, int(type_id)))
        except ValueError:
            raise ValueError(f"Association type without a numeric type id: {dict(item)!r}") from None
    return frozenset(keys)


def _format_types(types: Iterable[TypeKey]) -> str:
    return ", ".join(f"{category}/{type_id}" for category, type_id in sorted(types))


@dataclass(frozen=True, slots=True)
class ExpectedPair:
    """An association that should exist; ``types`` empty means any type will do (default associations)."""

    from_id: str
    to_id: str
    types: frozenset[TypeKey] = frozenset()

    @property
    def key(self) -> tuple[str, str]:
        """The ``(from_id, to_id)`` pair, without types."""
        return (self.from_id, self.to_id)

    def describe(self) -> str:
        """Render as ``1 -> 2 [HUBSPOT_DEFINED/279]`` for logs and errors."""
        types = _format_types(self.types) if self.types else "any type"
        return f"{self.from_id} -> {self.to_id} [{types}]"

    def as_dict(self) -> dict[str, Any]:
        """Render in the batch record's sample shape."""
        return {
            "from": self.from_id,
            "to": self.to_id,
            "types": [
                {"associationCategory": category, "associationTypeId": type_id}
                for category, type_id in sorted(self.types)
            ],
        }


@dataclass(frozen=True, slots=True)
class MissingPair:
    """An expected pair that the read-back did not confirm, and what HubSpot showed instead."""

    pair: ExpectedPair
    #: The types HubSpot lists between the two records; ``None`` when it lists no association at all.
    found_types: frozenset[TypeKey] | None = None

    def describe(self) -> str:
        """Render for logs and errors, saying why the pair does not count yet."""
        if self.found_types is None:
            return f"{self.pair.describe()}: not associated"
        return f"{self.pair.describe()}: has only [{_format_types(self.found_types)}]"

    def as_dict(self) -> dict[str, Any]:
        """Render as plain values (trigger events, XCom)."""
        found = None if self.found_types is None else [list(key) for key in sorted(self.found_types)]
        return {**self.pair.as_dict(), "found": found}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of comparing expected pairs with one read-back."""

    confirmed: list[ExpectedPair]
    missing: list[MissingPair]

    @property
    def missing_pairs(self) -> list[ExpectedPair]:
        """The expected pairs still to wait for."""
        return [item.pair for item in self.missing]


def index_read_back(
    read_back: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, dict[str, set[TypeKey]]]:
    """Turn ``read_associations`` output into ``from_id -> to_id -> types``."""
    index: dict[str, dict[str, set[TypeKey]]] = {}
    for from_id, targets in read_back.items():
        by_to = index.setdefault(str(from_id), {})
        for target in targets or ():
            to_id = target.get("toObjectId")
            if to_id is None:
                continue
            by_to.setdefault(str(to_id), set()).update(type_keys(target.get("associationTypes")))
    return index


def check_pairs(
    expected: Iterable[ExpectedPair], read_back: Mapping[str, Sequence[Mapping[str, Any]]]
) -> CheckResult:
    """Split ``expected`` into confirmed and missing pairs according to one batch read."""
    index = index_read_back(read_back)
    confirmed: list[ExpectedPair] = []
    missing: list[MissingPair] = []
    for pair in expected:
        found = index.get(pair.from_id, {}).get(pair.to_id)
        if found is not None and pair.types <= found:
            confirmed.append(pair)
        else:
            missing.append(MissingPair(pair, None if found is None else frozenset(found)))
    return CheckResult(confirmed, missing)


def chunk_by_from_ids(
    items: Iterable[T],
    key: Callable[[T], str],
    *,
    max_from_ids: int = MAX_FROM_IDS_PER_READ,
    max_items: int = MAX_PAIRS_PER_CHUNK,
) -> Iterator[list[T]]:
    """Group items in order into chunks naming at most ``max_from_ids`` distinct from-ids (``key``)."""
    chunk: list[T] = []
    from_ids: set[str] = set()
    for item in items:
        from_id = key(item)
        if chunk and (len(chunk) >= max_items or (from_id not in from_ids and len(from_ids) >= max_from_ids)):
            yield chunk
            chunk, from_ids = [], set()
        chunk.append(item)
        from_ids.add(from_id)
    if chunk:
        yield chunk


def from_ids_of(pairs: Iterable[ExpectedPair]) -> list[str]:
    """The distinct from-ids of ``pairs``, in first-seen order."""
    return list(dict.fromkeys(pair.from_id for pair in pairs))


class FailedPairs:
    """The pairs the operator reported as failed: exact ``(from, to)`` pairs, or HubSpot errors that
    name records, matched with the operator's own rule (``batches.error_matcher``)."""

    def __init__(
        self,
        pairs: Iterable[tuple[str, str]] = (),
        matchers: Iterable[Callable[[Any], bool]] = (),
    ) -> None:
        self._pairs = set(pairs)
        self._matchers = list(matchers)

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, ExpectedPair):
            return False
        return pair.key in self._pairs or any(matcher(pair) for matcher in self._matchers)

    def __bool__(self) -> bool:
        return bool(self._pairs or self._matchers)

    def __len__(self) -> int:
        return len(self._pairs) + len(self._matchers)

    @classmethod
    def from_errors(cls, errors: Iterable[Mapping[str, Any]]) -> FailedPairs | None:
        """Build from HubSpot errors; ``None`` when an error does not say which records it is about."""
        from airflow_hubspot_assoc.batches import error_matcher

        matchers = []
        for error in errors:
            matcher = error_matcher(error) if isinstance(error, Mapping) else None
            if matcher is None:
                return None
            matchers.append(matcher)
        return cls(matchers=matchers)


def _count(record: Mapping[str, Any], key: str) -> int:
    value = record.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Batch record field {key!r} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True)
class BatchRecord:
    """The operator's batch record (its XCom), parsed and checked; see docs/architecture.md."""

    status: str
    from_type: str
    to_type: str
    conn_id: str | None
    association_types: frozenset[TypeKey]
    #: Every type combination the load used (``typesUsed``); one entry means every pair has it.
    types_used: list[frozenset[TypeKey]]
    #: The operator's own type (``defaultTypes``), for rows without type fields; ``None``: not recorded.
    default_types: frozenset[TypeKey] | None
    #: The category of a row's bare ``association_type_id`` (``defaultCategory``).
    default_category: str
    total: int
    created: int
    failed: int
    invalid: int
    errors: list[dict[str, Any]]
    failed_pairs_path: str | None
    dry_run: bool
    source: dict[str, Any]
    sample: list[ExpectedPair]

    @classmethod
    def parse(cls, batch: Mapping[str, Any] | str) -> BatchRecord:
        """Parse the record from a dict or its JSON text; raise ``ValueError`` naming what is wrong."""
        record = _load_record(batch)
        status = record.get("status")
        if status not in STATUSES:
            raise ValueError(f"Batch record status must be one of {', '.join(STATUSES)}, got {status!r}")
        from_type, to_type = record.get("fromObjectType"), record.get("toObjectType")
        if not isinstance(from_type, str) or not from_type or not isinstance(to_type, str) or not to_type:
            raise ValueError(
                f"Batch record needs fromObjectType and toObjectType, got {from_type!r} and {to_type!r}"
            )
        conn_id = record.get("hubspotConnId")
        if conn_id is not None and not isinstance(conn_id, str):
            raise ValueError(f"Batch record hubspotConnId must be a string, got {conn_id!r}")
        association_types = type_keys(record.get("associationTypes") or ())
        types_used_raw = record.get("typesUsed")
        if types_used_raw is None:
            types_used = [association_types]
        elif isinstance(types_used_raw, list):
            types_used = [type_keys(combo) for combo in types_used_raw]
        else:
            raise ValueError(f"Batch record typesUsed must be a list, got {types_used_raw!r}")
        default_types_raw = record.get("defaultTypes")
        default_types = None if default_types_raw is None else type_keys(default_types_raw)
        default_category = record.get("defaultCategory") or "HUBSPOT_DEFINED"
        if not isinstance(default_category, str):
            raise ValueError(f"Batch record defaultCategory must be a string, got {default_category!r}")
        errors = record.get("errors")
        errors = [] if errors is None else errors
        if not isinstance(errors, list):
            raise ValueError(f"Batch record errors must be a list, got {errors!r}")
        sample_raw = record.get("sample")
        sample_raw = [] if sample_raw is None else sample_raw
        if not isinstance(sample_raw, list):
            raise ValueError(f"Batch record sample must be a list, got {sample_raw!r}")
        sample = [_sample_pair(item, association_types) for item in sample_raw]
        source = record.get("source")
        source = {} if source is None else source
        if not isinstance(source, Mapping):
            raise ValueError(f"Batch record source must be an object, got {source!r}")
        failed_pairs_path = record.get("failedPairsPath")
        if failed_pairs_path is not None and (
            not isinstance(failed_pairs_path, str) or not failed_pairs_path
        ):
            raise ValueError(f"Batch record failedPairsPath must be a path, got {failed_pairs_path!r}")
        return cls(
            status=status,
            from_type=from_type,
            to_type=to_type,
            conn_id=conn_id or None,
            association_types=association_types,
            types_used=types_used,
            default_types=default_types,
            default_category=default_category,
            total=_count(record, "total"),
            created=_count(record, "created"),
            failed=_count(record, "failed"),
            invalid=_count(record, "invalid"),
            errors=[dict(e) if isinstance(e, Mapping) else {"message": str(e)} for e in errors],
            failed_pairs_path=failed_pairs_path,
            dry_run=bool(record.get("dryRun", False)),
            source=dict(source),
            sample=sample,
        )

    def types_for_untyped_rows(self) -> frozenset[TypeKey] | None:
        """The types of rows that named none themselves; ``None`` when the record cannot tell."""
        if self.default_types is not None:
            return self.default_types
        if len(self.types_used) <= 1:
            return self.association_types
        return None

    def failed_pairs_from_errors(self) -> FailedPairs | None:
        """The failed pairs as far as the record's errors tell; ``None`` if they cannot tell them all.

        The record keeps at most ``MAX_ERRORS`` errors, so a full list may have lost some; an error
        without record ids (a whole request refused) cannot say which pairs it failed.
        """
        from airflow_hubspot_assoc.records import MAX_ERRORS

        if self.failed == 0:
            return FailedPairs()
        if len(self.errors) >= MAX_ERRORS:
            return None
        return FailedPairs.from_errors(self.errors)

    def canceled_reasons(self, limit: int = REASON_LIMIT) -> str:
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


def _load_record(batch: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(batch, Mapping):
        return dict(batch)
    if isinstance(batch, str):
        text = batch.strip()
        try:
            loaded = json.loads(text)
        except ValueError:
            # A Jinja template renders a dict as its Python repr (single quotes, True/None).
            try:
                loaded = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                loaded = None
        if isinstance(loaded, Mapping):
            return dict(loaded)
    shown = repr(batch)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    raise ValueError(
        "batch must be the operator's batch record (a dict or its JSON text, e.g. create.output), "
        f"got {shown}"
    )


def _sample_pair(item: Any, default_types: frozenset[TypeKey]) -> ExpectedPair:
    if not isinstance(item, Mapping) or not item.get("from") or not item.get("to"):
        raise ValueError(f"Batch record sample items need 'from' and 'to', got {item!r}")
    types = type_keys(item["types"]) if "types" in item else default_types
    return ExpectedPair(str(item["from"]), str(item["to"]), types)


def progress_text(confirmed: int, total: int | None) -> str:
    """Render progress as ``812 of 1,000 confirmed``."""
    if total is None:
        return f"{confirmed:,} confirmed so far"
    return f"{confirmed:,} of {total:,} confirmed"


def describe_missing(missing: Sequence[MissingPair], limit: int = MISSING_SAMPLE_LIMIT) -> str:
    """Render at most ``limit`` missing pairs, saying how many more there are."""
    shown = "; ".join(item.describe() for item in missing[:limit])
    more = len(missing) - limit
    return f"{shown}; ... and {more:,} more" if more > 0 else shown


def encode_pairs(pairs: Iterable[ExpectedPair]) -> tuple[list[list[list[str | int]]], list[list[str | int]]]:
    """Encode pairs as plain JSON values for trigger kwargs: distinct type sets, and ``[from, to, set]``."""
    type_sets: list[list[list[str | int]]] = []
    positions: dict[frozenset[TypeKey], int] = {}
    rows: list[list[str | int]] = []
    for pair in pairs:
        position = positions.get(pair.types)
        if position is None:
            position = positions[pair.types] = len(type_sets)
            type_sets.append([[category, type_id] for category, type_id in sorted(pair.types)])
        rows.append([pair.from_id, pair.to_id, position])
    return type_sets, rows


def decode_pairs(
    type_sets: Sequence[Sequence[Sequence[Any]]], rows: Sequence[Sequence[Any]]
) -> list[ExpectedPair]:
    """Invert :func:`encode_pairs`."""
    sets = [frozenset((str(category), int(type_id)) for category, type_id in item) for item in type_sets]
    return [ExpectedPair(str(from_id), str(to_id), sets[int(position)]) for from_id, to_id, position in rows]
