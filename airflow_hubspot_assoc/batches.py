"""Group pairs into batch requests and account for every pair of a batch from HubSpot's answer.

HubSpot has answered batch create with 200, 201 and 207 over time, so an answer is judged by its
body: ``status``, ``results`` and ``errors``. A 207 error names the records it is about in its
``context`` (``fromObjectId`` / ``toObjectId``); each error is mapped back to the pairs of the batch
that it names, so that the failed-pairs file can say which pair failed and why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from airflow_hubspot_assoc.api import JsonArray
from airflow_hubspot_assoc.association_types import Types
from airflow_hubspot_assoc.pairs import Pair

# Context keys in which HubSpot names the records of an error, by the side they name.
_FROM_KEYS = ("fromObjectId", "fromObjectIds", "fromId", "fromIds")
_TO_KEYS = ("toObjectId", "toObjectIds", "toId", "toIds")
_EITHER_KEYS = ("ids", "objectIds", "id")

# Encoded ``types`` lists, by the shared tuples the type resolver hands out (bounded: per-row types
# in the HubSpot-input form can be many).
_TYPES_JSON: dict[Types, str] = {}
_TYPES_JSON_MAX = 1_024
_new_tuple = tuple.__new__


def _types_json(types: Types) -> str:
    encoded = _TYPES_JSON.get(types)
    if encoded is None:
        if len(_TYPES_JSON) >= _TYPES_JSON_MAX:
            _TYPES_JSON.clear()
        encoded = _TYPES_JSON[types] = json.dumps([t.as_spec() for t in types], separators=(",", ":"))
    return encoded


class Item(NamedTuple):
    """A pair with the types it is created with."""

    pair: Pair
    types: Types


@dataclass
class Batch:
    """Up to ``batch_size`` distinct items for one endpoint (labelled create or default association)."""

    default: bool
    items: list[Item] = field(default_factory=list)
    segment: int = 0

    def inputs(self) -> list[dict[str, Any]]:
        """The request's ``inputs`` in HubSpot's shape."""
        if self.default:
            return [{"from": {"id": it.pair.from_id}, "to": {"id": it.pair.to_id}} for it in self.items]
        specs: dict[Types, list[dict[str, Any]]] = {}
        inputs = []
        for it in self.items:
            types = specs.get(it.types)
            if types is None:
                types = specs[it.types] = [t.as_spec() for t in it.types]
            inputs.append({"from": {"id": it.pair.from_id}, "to": {"id": it.pair.to_id}, "types": types})
        return inputs

    def encoded_inputs(self) -> JsonArray:
        """``inputs()`` as JSON, written directly: ids are normalised decimal digits (see
        ``pairs.model.Pair``), so they need no escaping, and each types list is encoded once."""
        if self.default:
            parts = [
                f'{{"from":{{"id":"{pair.from_id}"}},"to":{{"id":"{pair.to_id}"}}}}' for pair, _ in self.items
            ]
        else:
            types_json = _types_json
            parts = [
                f'{{"from":{{"id":"{pair.from_id}"}},"to":{{"id":"{pair.to_id}"}},"types":{types_json(types)}}}'
                for pair, types in self.items
            ]
        return JsonArray(("[" + ",".join(parts) + "]").encode())

    def encoded_archive_inputs(self) -> JsonArray:
        """The ``inputs`` of ``batch/archive`` (every type between each pair): ``{"from", "to": [..]}``,
        one input per pair, so that an error naming a pair maps back to it alone."""
        parts = [
            f'{{"from":{{"id":"{pair.from_id}"}},"to":[{{"id":"{pair.to_id}"}}]}}' for pair, _ in self.items
        ]
        return JsonArray(("[" + ",".join(parts) + "]").encode())

    def halves(self) -> tuple[Batch, Batch]:
        """Split in two, for an answer that the batch was too large."""
        middle = len(self.items) // 2
        return (
            Batch(self.default, self.items[:middle], self.segment),
            Batch(self.default, self.items[middle:], self.segment),
        )


class BatchBuilder:
    """Fill batches of at most ``batch_size`` items, one open batch per endpoint.

    When one batch fills, every open batch is closed with it: the rows read so far then form a
    segment whose batches are all known, which is what a checkpoint needs (``load.py``). Inputs that
    mix default and labelled pairs pay with some partly filled batches; most inputs use one endpoint.

    Exact duplicates (same ids and types) within an open batch are dropped and counted: HubSpot's
    create is idempotent, so a repeat in another batch is harmless and is not tracked (that would make
    memory grow with the input).
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.duplicates = 0
        self._open: dict[bool, Batch] = {}
        self._seen: dict[bool, set[tuple[str, str, Types]]] = {False: set(), True: set()}

    def add(self, pair: Pair, types: Types) -> list[Batch]:
        """Add one item; return the batches closed by it (none, or every open one)."""
        default = not types
        key = (pair.from_id, pair.to_id, types)
        seen = self._seen[default]
        if key in seen:
            self.duplicates += 1
            return []
        seen.add(key)
        batch = self._open.get(default)
        if batch is None:
            batch = self._open[default] = Batch(default)
        items = batch.items
        items.append(_new_tuple(Item, (pair, types)))  # Item(pair, types) without its Python-level __new__
        if len(items) >= self.batch_size:
            return self.flush()
        return []

    def flush(self) -> list[Batch]:
        """Close and return the batches still open."""
        closed = list(self._open.values())
        self._open.clear()
        for seen in self._seen.values():
            seen.clear()
        return closed


class Failure(NamedTuple):
    """A pair that did not land, with HubSpot's (or the package's) reason."""

    pair: Pair
    category: str
    message: str
    correlation_id: str | None = None
    #: Extra fields for the failed-pairs file (a key failure's side, property and value).
    detail: Mapping[str, Any] | None = None


@dataclass
class BatchOutcome:
    """What became of each pair of one batch."""

    status: str
    created: list[Item]
    failures: list[Failure]
    errors: list[dict[str, Any]]
    started_at: str | None = None
    completed_at: str | None = None


def _context_ids(error: Mapping[str, Any], keys: Iterable[str]) -> set[str]:
    """Ids named under ``keys`` in an error's context or in its detailed errors' contexts."""
    found: set[str] = set()
    details = error.get("errors")
    contexts = [error.get("context")]
    if isinstance(details, list):
        contexts += [detail.get("context") for detail in details if isinstance(detail, Mapping)]
    for context in contexts:
        if not isinstance(context, Mapping):
            continue
        for key in keys:
            values = context.get(key)
            if isinstance(values, str):
                values = [values]
            if isinstance(values, list):
                found.update(str(v).lstrip("0") or "0" for v in values)
    return found


def error_matcher(error: Mapping[str, Any]) -> Any:
    """A predicate telling whether an error names a pair, or None when it names no record."""
    from_ids = _context_ids(error, _FROM_KEYS)
    to_ids = _context_ids(error, _TO_KEYS)
    either = _context_ids(error, _EITHER_KEYS)
    if not (from_ids or to_ids or either):
        return None

    def names(pair: Pair) -> bool:
        if either and (pair.from_id in either or pair.to_id in either):
            return True
        if not (from_ids or to_ids):
            return False
        return (not from_ids or pair.from_id in from_ids) and (not to_ids or pair.to_id in to_ids)

    return names


def _result_ids(body: Mapping[str, Any]) -> set[tuple[str, str]] | None:
    """The (from, to) ids HubSpot reports as done, or None when the answer lists none."""
    results = body.get("results")
    if not isinstance(results, list) or not results:
        return None
    done = set()
    for result in results:
        if not isinstance(result, Mapping):
            continue
        if "fromObjectId" in result:
            done.add((str(result.get("fromObjectId")), str(result.get("toObjectId"))))
        elif isinstance(result.get("from"), Mapping) and isinstance(result.get("to"), Mapping):
            done.add((str(result["from"].get("id")), str(result["to"].get("id"))))
    return done


def _failure(item: Item, error: Mapping[str, Any]) -> Failure:
    return Failure(
        item.pair,
        str(error.get("category") or "UNKNOWN"),
        str(error.get("message") or "HubSpot reported an error without a message"),
        error.get("correlationId"),
    )


def _timestamp(value: Any) -> str | None:
    """HubSpot's ISO timestamps, or None for anything else an odd answer may carry."""
    return value if isinstance(value, str) else None


def outcome_of(batch: Batch, body: Mapping[str, Any]) -> BatchOutcome:
    """Account for every item of ``batch`` from HubSpot's answer ``body``."""
    status = str(body.get("status") or "COMPLETE").upper()
    raw_errors = body.get("errors")
    errors = [dict(e) for e in raw_errors if isinstance(e, Mapping)] if isinstance(raw_errors, list) else []
    outcome = BatchOutcome(
        status, [], [], list(errors), _timestamp(body.get("startedAt")), _timestamp(body.get("completedAt"))
    )
    if status == "CANCELED":
        reason = (
            "; ".join(str(e.get("message")) for e in errors if e.get("message"))
            or "HubSpot canceled the batch"
        )
        canceled = {"category": "CANCELED", "message": reason}
        outcome.failures = [_failure(item, canceled) for item in batch.items]
        return outcome

    if not errors:
        outcome.created = list(batch.items)
        return outcome
    matchers = [(error, error_matcher(error)) for error in errors]
    unmapped = [error for error, matcher in matchers if matcher is None]
    mapped = [(error, matcher) for error, matcher in matchers if matcher is not None]
    matched_errors: set[int] = set()
    remaining: list[Item] = []
    for item in batch.items:
        for index, (error, matcher) in enumerate(mapped):
            if matcher(item.pair):
                outcome.failures.append(_failure(item, error))
                matched_errors.add(index)
                break
        else:
            remaining.append(item)
    unmapped += [error for index, (error, _) in enumerate(mapped) if index not in matched_errors]

    if unmapped:
        # Errors that name no pair of the batch: trust ``results`` to tell the pairs that landed.
        done = _result_ids(body) or set()
        for item in remaining:
            if (item.pair.from_id, item.pair.to_id) in done:
                outcome.created.append(item)
            else:
                outcome.failures.append(_failure(item, unmapped[0]))
    else:
        outcome.created = remaining
    return outcome


def whole_batch_failure(
    batch: Batch, category: str, message: str, correlation_id: str | None
) -> BatchOutcome:
    """Every item failed for one reason (HubSpot refused the whole request)."""
    error = {"status": "error", "category": category, "message": message}
    if correlation_id:
        error["correlationId"] = correlation_id
    return BatchOutcome(
        "COMPLETE",
        [],
        [Failure(item.pair, category, message, correlation_id) for item in batch.items],
        [error],
    )


def combined_status(statuses: Iterable[str]) -> str:
    """The status of a load from its batches': COMPLETE only when every batch is."""
    seen = set(statuses)
    if "CANCELED" in seen:
        return "CANCELED"
    if not seen or seen == {"COMPLETE"}:
        return "COMPLETE"
    if seen <= {"PENDING"}:
        return "PENDING"
    return "PROCESSING"
