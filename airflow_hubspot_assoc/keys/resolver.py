"""``KeyResolver``: collect a load's distinct keys, resolve each once, map pairs to record ids.

The load drives it in three steps, so that resolution costs no extra pass over the input and nothing
is written before every key is known: ``collect`` each pair in the validate pass, ``resolve`` once
after it (every request happens here, before the first write), and ``apply`` to each pair in the
send pass, which gives the pair with record ids or a ``Failure`` (``UNRESOLVED_KEY``,
``AMBIGUOUS_KEY``) that the load accounts for like a pair HubSpot refused.

Memory: one ``dict[str, int]`` per side from the key as HubSpot compares it to the record id (0
while unknown or not found, -1 when ambiguous, ``-id - 1`` from the key cache): a million distinct
emails cost the strings plus some 100 bytes each (some 150 MiB). Candidate ids are kept only for
ambiguous keys; of a key cache only the keys this run did not see stay beside the map.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc.batches import Batch, BatchOutcome, Failure, Item
from airflow_hubspot_assoc.client.lookup import (
    OBJECTS_READ_MAX_INPUTS,
    SEARCH_IN_MAX_VALUES,
    SEARCH_MAX_FILTER_GROUPS,
)
from airflow_hubspot_assoc.exceptions import HubSpotApiError, HubSpotConfigError
from airflow_hubspot_assoc.keys.cache import write_key_map
from airflow_hubspot_assoc.keys.normalise import KeyProperty

if TYPE_CHECKING:
    from airflow_hubspot_assoc.client.lookup import KeyLookup
    from airflow_hubspot_assoc.keys.cache import KeyCache
    from airflow_hubspot_assoc.pairs import Pair

UNRESOLVED_KEY = "UNRESOLVED_KEY"
AMBIGUOUS_KEY = "AMBIGUOUS_KEY"
#: Candidate ids named in an ambiguous key's message.
MAX_CANDIDATES = 10
UNKNOWN = 0
AMBIGUOUS = -1


def record_id_of(value: int) -> int:
    """The record id a key map value names (0 for none): fresh ids as they are, cached ones encoded
    as ``-id - 1`` so that one int tells both the id and where it came from."""
    return value if value > 0 else (-value - 1 if value < AMBIGUOUS else 0)


#: Least seconds between two progress lines of the resolution.
PROGRESS_INTERVAL_S = 5.0
#: Values per search request: one ``IN`` filter of 100 in each filter group.
SEARCH_VALUES = SEARCH_IN_MAX_VALUES * SEARCH_MAX_FILTER_GROUPS


@dataclass
class SideKeys:
    """The keys of one side: folded key -> record id (``UNKNOWN``, ``AMBIGUOUS``), and counts."""

    prop: KeyProperty
    ids: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    from_cache: int = 0
    requests: int = 0
    #: Cached keys resolved again because HubSpot reported their record missing (merged, deleted).
    refreshed: set[str] = field(default_factory=set)
    #: The file of this side's resolved keys after the run, read by the sensor's ``verify="all"``.
    key_map: str | None = None

    def summary(self) -> dict[str, Any]:
        """This side's part of the record's ``resolution``."""
        ambiguous = len(self.candidates)
        unresolved = sum(1 for value in self.ids.values() if value == UNKNOWN)
        return {
            "objectType": self.prop.object_type,
            "property": self.prop.name,
            "distinctKeys": len(self.ids),
            "resolved": len(self.ids) - unresolved - ambiguous,
            "unresolved": unresolved,
            "ambiguous": ambiguous,
            "fromCache": self.from_cache,
            "refreshed": len(self.refreshed),
            "requests": self.requests,
            **({"keyMap": self.key_map} if self.key_map else {}),
        }


class KeyResolver:
    """Business keys of a load's sides (None: that side holds record ids) -> record ids.

    :param lookup: the reads (``client.lookup.KeyLookup``); its request count is read per side.
    :param cache: where keys resolved by earlier runs are read (tried before HubSpot) and this
        run's are saved (``save_cache``).
    """

    def __init__(
        self,
        lookup: KeyLookup,
        from_key: KeyProperty | None,
        to_key: KeyProperty | None,
        *,
        log: logging.Logger,
        cache: KeyCache | None = None,
    ) -> None:
        self.lookup = lookup
        self.cache = cache
        self.log = log
        self.sides = (
            SideKeys(from_key) if from_key is not None else None,
            SideKeys(to_key) if to_key is not None else None,
        )
        loaded = [cache.load(side.prop) if cache and side else {} for side in self.sides]
        # After ``resolve``: only the cached keys this run did not see (written back by ``save_cache``).
        self._known: tuple[dict[str, int], dict[str, int]] = (loaded[0], loaded[1])
        # Worker threads report stale cached ids concurrently (``refresh``).
        self._lock = threading.Lock()
        self._reverse: list[dict[int, str] | None] = [None, None]
        self._last_progress = time.monotonic()
        #: Told the pairs ``retry_stale`` is about to send with fresh ids (the ledger reads their state).
        self.on_resend: Callable[[list[Pair]], None] | None = None

    @property
    def key_sides(self) -> tuple[bool, bool]:
        """Which sides the pair reader must keep as text."""
        return (self.sides[0] is not None, self.sides[1] is not None)

    # -- before reading ---------------------------------------------------------------------
    def check_properties(self) -> None:
        """Each key property exists and has unique values (email and domain need no check)."""
        for side in self.sides:
            if side is None or side.prop.trusted:
                continue
            prop, before = side.prop, self.lookup.requests
            parameter = f"{prop.side}_id_property"
            try:
                definition = self.lookup.property_definition(prop.object_type, prop.name)
            except HubSpotApiError as err:
                if err.status == 404:
                    raise HubSpotConfigError(
                        f"{parameter}={prop.name!r}: {prop.object_type} has no property {prop.name!r} "
                        f"({err.hubspot_message})"
                    ) from err
                raise
            finally:
                side.requests += self.lookup.requests - before
            if definition.get("hasUniqueValue") is not True:
                raise HubSpotConfigError(
                    f"{parameter}={prop.name!r}: the property {prop.name!r} of {prop.object_type} does not "
                    "have unique values (hasUniqueValue is false), so it cannot identify a record; use "
                    "a property created with unique values"
                )

    # -- validate pass ------------------------------------------------------------------------
    def collect(self, pair: Pair) -> None:
        """Note the pair's keys (called for every valid row of the validate pass)."""
        source, target = self.sides
        if source is not None:
            source.ids.setdefault(source.prop.fold(pair.from_id), UNKNOWN)
        if target is not None:
            target.ids.setdefault(target.prop.fold(pair.to_id), UNKNOWN)

    # -- between the passes -------------------------------------------------------------------
    def resolve(self) -> None:
        """Resolve every distinct key not known yet, with the fewest requests; log what came out."""
        for side, known in zip(self.sides, self._known, strict=True):
            if side is None:
                continue
            for key in side.ids:
                record_id = known.pop(key, 0)
                if record_id > 0:
                    side.ids[key] = -record_id - 1
                    side.from_cache += 1
            wanted = [key for key, value in side.ids.items() if value == UNKNOWN and key]
            self._lookup(side, wanted)
            summary = side.summary()
            self.log.info(
                "Resolved %s %s keys (%s) of %s: %s resolved (%s from the cache), %s not found, "
                "%s ambiguous, in %s requests.",
                f"{summary['distinctKeys']:,}",
                side.prop.side,
                side.prop.name,
                side.prop.object_type,
                f"{summary['resolved']:,}",
                f"{side.from_cache:,}",
                f"{summary['unresolved']:,}",
                f"{summary['ambiguous']:,}",
                f"{side.requests:,}",
            )

    def _lookup(self, side: SideKeys, wanted: list[str]) -> None:
        before = self.lookup.requests
        if side.prop.search:
            self._search(side, wanted)
        else:
            self._read(side, wanted)
        side.requests += self.lookup.requests - before

    def _read(self, side: SideKeys, wanted: list[str]) -> None:
        prop, ids = side.prop, side.ids
        step = OBJECTS_READ_MAX_INPUTS
        chunks = [wanted[start : start + step] for start in range(0, len(wanted), step)]
        for done, found in enumerate(self.lookup.read_many(prop.object_type, prop.name, chunks)):
            self._progress(side, done * step, len(wanted))
            for record_id, value in found:
                key = prop.fold(value)
                if key in ids:
                    ids[key] = int(record_id)

    def _search(self, side: SideKeys, wanted: list[str]) -> None:
        prop, ids = side.prop, side.ids
        for start in range(0, len(wanted), SEARCH_VALUES):
            self._progress(side, start, len(wanted))
            chunk = wanted[start : start + SEARCH_VALUES]
            found: dict[str, set[str]] = {}
            after = ""
            while True:
                page = self.lookup.search_in(prop.object_type, prop.name, chunk, after)
                for record_id, value in page.matches:
                    found.setdefault(prop.fold(value), set()).add(record_id)
                if page.after is None:
                    break
                after = page.after
            for key, records in found.items():
                if key not in ids:
                    continue
                if len(records) == 1:
                    ids[key] = int(next(iter(records)))
                else:
                    ordered = sorted(records, key=int)
                    ids[key] = AMBIGUOUS
                    side.candidates[key] = (len(ordered), ordered[:MAX_CANDIDATES])

    def _progress(self, side: SideKeys, done: int, total: int) -> None:
        """A progress line now and then: resolving a million keys takes minutes at HubSpot's pace."""
        now = time.monotonic()
        if done and now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.log.info(
                "Resolving %s keys (%s): %s of %s looked up, %s requests so far.",
                side.prop.side,
                side.prop.name,
                f"{done:,}",
                f"{total:,}",
                f"{self.lookup.requests:,}",
            )

    # -- send pass ----------------------------------------------------------------------------
    def apply(self, pair: Pair) -> Pair | Failure:
        """The pair with record ids, or the failure of its first side whose key did not resolve."""
        ids = [pair.from_id, pair.to_id]
        for index, side in enumerate(self.sides):
            if side is None:
                continue
            key = side.prop.fold(ids[index])
            record_id = record_id_of(side.ids.get(key, UNKNOWN))
            if record_id:
                ids[index] = str(record_id)
                continue
            return self._failure(pair, side, ids[index] if index else pair.from_id, key)
        return pair._replace(from_id=ids[0], to_id=ids[1])

    def _failure(self, pair: Pair, side: SideKeys, given: str, key: str) -> Failure:
        prop = side.prop
        detail = {"side": prop.side, "property": prop.name, "value": given}
        if key in side.candidates:
            count, shown = side.candidates[key]
            more = f" (first {len(shown)} of {count})" if count > len(shown) else ""
            message = (
                f"{prop.side} key {prop.name}={given!r} matches {count} {prop.object_type} records"
                f"{more}: {', '.join(shown)}; a pair needs exactly one"
            )
            return Failure(pair, AMBIGUOUS_KEY, message, None, {**detail, "candidates": shown})
        message = f"{prop.side} key {prop.name}={given!r}: no {prop.object_type} record has this value"
        return Failure(pair, UNRESOLVED_KEY, message, None, detail)

    # -- stale ids from the cache ---------------------------------------------------------------
    def refresh(self, failures: Sequence[Failure]) -> tuple[list[tuple[Pair, Pair]], list[Failure]]:
        """Resolve again, once, the cached keys behind pairs HubSpot refused, and say what to retry.

        A record merged or deleted since the cache was written makes HubSpot refuse the pair (a 207
        error naming the record). Each cached key behind a refused pair is resolved again once per
        run; a pair whose key now names another record is returned to be sent again with it.

        :return: ``(old pair, pair with fresh ids)`` to send again, and the failures that stand
            (HubSpot's, or the key's own when it no longer resolves).
        """
        retry: list[tuple[Pair, Pair]] = []
        standing: list[Failure] = []
        with self._lock:
            stale = [self._cached_keys(failure.pair) for failure in failures]
            for index, side in enumerate(self.sides):
                if side is None:
                    continue
                named = {key for keys in stale if (key := keys[index]) is not None}
                wanted = sorted(named - side.refreshed)
                if wanted:
                    side.refreshed.update(wanted)
                    for key in wanted:
                        side.ids[key] = UNKNOWN
                        side.candidates.pop(key, None)
                    self._lookup(side, wanted)
            for failure, keys in zip(failures, stale, strict=True):
                ids = [failure.pair.from_id, failure.pair.to_id]
                problem: Failure | None = None
                for index, side in enumerate(self.sides):
                    key = keys[index]
                    if side is None or key is None:
                        continue
                    record_id = record_id_of(side.ids.get(key, UNKNOWN))
                    if not record_id:
                        problem = self._failure(failure.pair, side, key, key)
                        break
                    ids[index] = str(record_id)
                if problem is not None:
                    standing.append(problem)
                elif ids != [failure.pair.from_id, failure.pair.to_id]:
                    retry.append((failure.pair, failure.pair._replace(from_id=ids[0], to_id=ids[1])))
                else:
                    standing.append(failure)
        return retry, standing

    def retry_stale(
        self, batch: Batch, outcome: BatchOutcome, send: Callable[[Batch], list[BatchOutcome]]
    ) -> BatchOutcome:
        """``outcome`` after sending again, once, the pairs whose cached key ``refresh`` corrected.

        Called on the load's worker thread before the batch's segment commits, so each pair is
        accounted for once: created by the second try, or failed with the reason that stands.
        """
        retry, standing = self.refresh(outcome.failures)
        if not retry:
            return dataclasses.replace(outcome, failures=standing)
        types = {item.pair: item.types for item in batch.items}
        if self.on_resend is not None:
            self.on_resend([new for _, new in retry])
        second = send(Batch(batch.default, [Item(new, types[old]) for old, new in retry], batch.segment))
        return dataclasses.replace(
            outcome,
            created=outcome.created + [item for o in second for item in o.created],
            failures=standing + [failure for o in second for failure in o.failures],
            errors=outcome.errors + [error for o in second for error in o.errors],
        )

    def _cached_keys(self, pair: Pair) -> tuple[str | None, str | None]:
        """The cached keys (per side) whose cached id the pair carries; None where it carries none."""
        found: list[str | None] = [None, None]
        for index, side in enumerate(self.sides):
            if side is None or not side.from_cache:
                continue
            reverse = self._reverse[index]
            if reverse is None:
                # Built on the first refused pair only: a clean run never pays for it.
                reverse = {-value - 1: key for key, value in side.ids.items() if value < AMBIGUOUS}
                self._reverse[index] = reverse
            record_id = pair.from_id if index == 0 else pair.to_id
            found[index] = reverse.get(int(record_id)) if record_id.isdigit() else None
        return found[0], found[1]

    # -- after the load -----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The record's ``resolution``: per side with a key property, what resolution did."""
        return {side.prop.side: side.summary() for side in self.sides if side is not None}

    def save_cache(self, beside: str | None = None) -> None:
        """Save what the cache should hold now, and note each side's file in the summary (``keyMap``).

        Without a cache the run's keys go to ``<beside>.<side>-keys.json`` (``beside``: the failed
        pairs' path), so that ``verify="all"`` of the sensor, on another worker, maps the input's
        keys to the same ids without resolving them again. A failed write is logged, never raised;
        that side then has no ``keyMap``.
        """
        entries = self.cache_entries() if self.cache is not None or beside else []
        for prop, ids in entries:
            side = self.sides[0] if prop.side == "from" else self.sides[1]
            if self.cache is not None:
                path = self.cache.save(prop, ids)
            else:
                path = f"{beside}.{prop.side}-keys.json"
                path = path if write_key_map(path, prop, ids, portal="", log=self.log) else None
            if side is not None:
                side.key_map = path

    def cache_entries(self) -> list[tuple[KeyProperty, dict[str, int]]]:
        """Per side, what a key cache should hold now: the cache read, updated with this run's keys
        (resolved ones added or replaced, those that no longer resolve removed)."""
        entries = []
        for side, known in zip(self.sides, self._known, strict=True):
            if side is None:
                continue
            merged = dict(known)
            for key, value in side.ids.items():
                record_id = record_id_of(value)
                if record_id:
                    merged[key] = record_id
            entries.append((side.prop, merged))
        return entries
