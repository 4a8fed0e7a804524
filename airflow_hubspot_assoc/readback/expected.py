"""What a read-back waits for: the pairs a batch record says should be visible in HubSpot.

* ``verify="sample"`` (and ``"none"`` when the status cannot be trusted): the record's sample.
* ``verify="all"``: every pair of the input. A path source is read again (the same readers as the
  operator, per-row types and labels resolved the same way), skipping invalid rows and the pairs the
  operator reported as failed (from its failed-pairs file, or from the record's errors when they
  name every failed pair). A load by business keys maps the input's keys to the ids it resolved
  through the files its record names (``readback.keyed``), never resolving again. An XCom source
  can only be checked in full when the sample holds every created pair.

Runs in the worker only (it may read files and resolve labels, which block); the triggerer gets the
pairs still missing, already decided.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.readback.keyed import KeyMaps, key_map_paths
from airflow_hubspot_assoc.readback.matching import FailedPairs
from airflow_hubspot_assoc.record import PAST_TENSE, BatchRecord

#: How much the sensor reads back.
VERIFY_MODES = ("sample", "all", "none")

log = logging.getLogger(__name__)


class ExpectedPairs:
    """The pairs that should be visible, in a stable order, excluding failed ones; iterable again.

    :param record: the batch record
    :param verify: one of :data:`VERIFY_MODES`
    :param resolve_label: label name -> ``(category, type id)`` for per-row labels (the hook's)
    :param logger: where to warn when the record cannot tell a row's types
    """

    def __init__(
        self,
        record: BatchRecord,
        verify: str,
        resolve_label: Callable[[str], tuple[str, int]],
        logger: Any = None,
    ) -> None:
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}, got {verify!r}")
        self.record = record
        self.verify = verify
        self._resolve_label = resolve_label
        self._log = logger or log
        self._failed: FailedPairs | None = None

    def __iter__(self) -> Iterator[AssociationPair]:
        record = self.record
        # A revert's pairs it removed types from are waited for to be gone (``removedSample``).
        samples = (*record.sample, *record.removed_sample)
        if self.verify != "all":
            yield from samples
            return
        kind = record.source.get("kind")
        if record.resolution is not None and record.created <= len(record.sample):
            yield from record.sample  # the sample holds every created pair, with its resolved ids
            return
        if record.resolution is not None:
            # The input holds business keys (issue 13): mapped through the files the load wrote.
            if kind != "path" or key_map_paths(record) is None:
                raise HubSpotConfigError(
                    f"verify='all' cannot read back this load by keys ({_keys_of(record)}) of "
                    f"{record.created:,} pairs: its input holds keys, and "
                    + (
                        "it came from an XCom list, which the sensor cannot read again"
                        if kind != "path"
                        else "the record names no file of the ids they resolved to"
                    )
                    + ". Load from a file (pairs_path) with key_cache_path or failed_pairs_path set, "
                    "or use verify='sample'."
                )
            yield from self._pairs_from_path(KeyMaps.of(record))
            return
        if kind == "path":
            yield from self._pairs_from_path()
            return
        if record.written <= len(samples):
            yield from samples
            return
        if kind == "xcom":
            done = PAST_TENSE[record.operation]
            raise HubSpotConfigError(
                f"verify='all' needs every {done} pair, but the batch came from an XCom list "
                f"and its record samples only {len(record.sample):,} of {record.written:,} "
                f"{done} pairs. Use verify='sample', or load from a file (pairs_path) so the "
                "sensor can read it again."
            )
        raise HubSpotConfigError(
            f"verify='all' cannot read the batch record's source {dict(record.source)!r}; use verify='sample'"
        )

    def _pairs_from_path(self, keys: KeyMaps | None = None) -> Iterator[AssociationPair]:
        """The input's pairs again; ``keys``: map a load by keys' keys to the ids it resolved."""
        from airflow_hubspot_assoc.association_types import TypeResolver
        from airflow_hubspot_assoc.pairs import InvalidRow, PairReader

        record = self.record
        source = record.source
        path = source.get("path")
        if not isinstance(path, str) or not path:
            raise HubSpotConfigError(f"The batch record's source has no path: {dict(source)!r}")
        failed = self.failed_pairs()
        untyped = record.types_for_untyped_rows()
        single = frozenset(record.types_used[0]) if len(record.types_used) == 1 else None
        if untyped is None:
            self._log.warning(
                "The batch used several association types and its record does not say which one rows "
                "without their own type got: those rows are accepted with any type."
            )
        resolver = TypeResolver(tuple(sorted(untyped or ())), record.default_category, self._resolve_label)
        reader = PairReader.from_path(
            path,
            from_id_field=str(source.get("fromIdField") or "from_id"),
            to_id_field=str(source.get("toIdField") or "to_id"),
            keys=keys.sides if keys is not None else (False, False),
        )
        for row in reader:
            if isinstance(row, InvalidRow):
                continue  # never sent: counted as invalid by the operator
            types: frozenset[AssociationType]
            if single is not None:
                types = single
            elif untyped is None and row.types is None and row.label is None and row.type_id is None:
                types = frozenset()
            else:
                types = frozenset(resolver.types_of(row))
            from_id, to_id = row.from_id, row.to_id
            if keys is not None:
                ids = keys.map(from_id, to_id)
                if ids is None:
                    continue  # a key that did not resolve: the operator failed the pair
                from_id, to_id = ids
            pair = AssociationPair(from_id, to_id, types)
            if failed and pair in failed:
                continue
            yield pair

    def failed_pairs(self) -> FailedPairs:
        """The pairs not to wait for (read once per instance)."""
        if self._failed is None:
            self._failed = failed_pairs_of(self.record)
        return self._failed


def _keys_of(record: BatchRecord) -> str:
    sides = record.resolution or {}
    return ", ".join(
        f"{side}: {value.get('property')}" for side, value in sides.items() if isinstance(value, dict)
    )


def failed_pairs_of(record: BatchRecord) -> FailedPairs:
    """The pairs a record reports as failed: from its failed-pairs file, else from its errors."""
    if record.failed == 0:
        return FailedPairs()
    if record.failed_pairs_path:
        try:
            return FailedPairs(pairs=read_failed_pairs(record.failed_pairs_path))
        except OSError as err:
            raise HubSpotConfigError(
                f"Cannot read the batch's failed pairs at {record.failed_pairs_path!r} ({err}); "
                "verify='all' needs them to know which pairs not to wait for"
            ) from err
    from_errors = failed_pairs_from_errors(record)
    if from_errors is None:
        raise HubSpotConfigError(
            f"{record.failed:,} pairs of the batch failed and its record keeps only "
            f"{len(record.errors)} errors, so verify='all' cannot tell which pairs not to wait for. "
            "Set failed_pairs_path on BatchCreateAssociationsOperator (the sensor reads it), "
            "or use verify='sample'."
        )
    return from_errors


def failed_pairs_from_errors(record: BatchRecord) -> FailedPairs | None:
    """The failed pairs as far as the record's errors tell; ``None`` if they cannot tell them all.

    The record keeps at most ``MAX_ERRORS`` errors, so a full list may have lost some; an error
    without record ids (a whole request refused) cannot say which pairs it failed.
    """
    if record.failed == 0:
        return FailedPairs()
    if not record.errors_complete():
        return None
    return FailedPairs.from_errors(record.errors)


def read_failed_pairs(path: str) -> set[tuple[str, str]]:
    """The ``(from_id, to_id)`` of every line of the operator's failed-pairs file (JSON Lines)."""
    pairs: set[tuple[str, str]] = set()
    for number, line in enumerate(_open_text(path), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as err:
            raise HubSpotConfigError(f"{path}, line {number}: not JSON ({err})") from err
        from_id, to_id = (
            (entry.get("from_id"), entry.get("to_id")) if isinstance(entry, dict) else (None, None)
        )
        if from_id is not None and to_id is not None:
            pairs.add((str(from_id), str(to_id)))
    return pairs


def _open_text(path: str) -> Iterator[str]:
    with storage.location(path).open("r", encoding="utf-8") as handle:
        yield from handle
