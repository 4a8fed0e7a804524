"""Judging one read-back: which expected association pairs HubSpot shows. Pure values, no I/O.

Rules:

* A pair is confirmed when HubSpot lists an association from ``from_id`` to ``to_id`` that carries
  every expected type; extra types (such as the unlabelled default HubSpot adds next to a label) do
  not matter.
* A pair created as a default association (no types) accepts any type.
* Pairs the operator reported as failed are never waited for (:class:`FailedPairs`).
* An archive is read back for absence (``absent=True``): a pair is confirmed when HubSpot lists
  none of the types it had removed; a pair archived without types (every association) is confirmed
  only when HubSpot lists no association between the two records at all.
* A revert waits for both: the pairs it restored (present) and those it removed from, which it names
  in ``absent_pairs`` (read back for absence like an archive's).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_hubspot_assoc.api import BATCH_READ_MAX_INPUTS
from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType, describe_types, type_set

T = TypeVar("T")

#: How many pairs one read-back step judges at most (bounds memory when from-ids repeat a lot).
MAX_PAIRS_PER_CHUNK = 5_000
#: How many missing pairs error messages and events name.
MISSING_SAMPLE_LIMIT = 20


@dataclass(frozen=True, slots=True)
class MissingPair:
    """An expected pair that the read-back did not confirm, and what HubSpot showed instead."""

    pair: AssociationPair
    #: The types HubSpot lists between the two records; ``None`` when it lists no association at all.
    found_types: frozenset[AssociationType] | None = None
    #: Waited for to disappear (an archive), not to appear.
    absent: bool = False

    def describe(self) -> str:
        """Render for logs and errors, saying why the pair does not count yet."""
        if self.absent:
            return f"{self.pair.describe()}: still has [{describe_types(self.found_types or ())}]"
        if self.found_types is None:
            return f"{self.pair.describe()}: not associated"
        return f"{self.pair.describe()}: has only [{describe_types(self.found_types)}]"

    def as_dict(self) -> dict[str, Any]:
        """Render as plain values (trigger events, XCom)."""
        found = None if self.found_types is None else [list(key) for key in sorted(self.found_types)]
        return {**self.pair.as_dict(), "found": found}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of comparing expected pairs with one read-back."""

    confirmed: list[AssociationPair]
    missing: list[MissingPair]

    @property
    def missing_pairs(self) -> list[AssociationPair]:
        """The expected pairs still to wait for."""
        return [item.pair for item in self.missing]


def index_read_back(
    read_back: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, dict[str, set[AssociationType]]]:
    """Turn ``read_associations`` output into ``from_id -> to_id -> types``."""
    index: dict[str, dict[str, set[AssociationType]]] = {}
    for from_id, targets in read_back.items():
        by_to = index.setdefault(str(from_id), {})
        for target in targets or ():
            to_id = target.get("toObjectId")
            if to_id is None:
                continue
            by_to.setdefault(str(to_id), set()).update(type_set(target.get("associationTypes")))
    return index


def check_pairs(
    expected: Iterable[AssociationPair],
    read_back: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    absent: bool = False,
    absent_pairs: Collection[AssociationPair] = (),
) -> CheckResult:
    """Split ``expected`` into confirmed and missing pairs according to one batch read.

    :param absent: confirm pairs whose types are gone (an archive) instead of present.
    :param absent_pairs: the pairs to confirm gone when ``absent`` is false (a revert's removals).
    """
    index = index_read_back(read_back)
    confirmed: list[AssociationPair] = []
    missing: list[MissingPair] = []
    for pair in expected:
        found = index.get(pair.from_id, {}).get(pair.to_id)
        if absent or pair in absent_pairs:
            # No types: every association was archived, so any type left counts against it.
            if not found or (pair.types and not pair.types & found):
                confirmed.append(pair)
            else:
                missing.append(MissingPair(pair, frozenset(found), absent=True))
        elif found is not None and pair.types <= found:
            confirmed.append(pair)
        else:
            missing.append(MissingPair(pair, None if found is None else frozenset(found)))
    return CheckResult(confirmed, missing)


def chunk_by_from_ids(
    items: Iterable[T],
    key: Callable[[T], str],
    *,
    max_from_ids: int = BATCH_READ_MAX_INPUTS,
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


def from_ids_of(pairs: Iterable[AssociationPair]) -> list[str]:
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
        if not isinstance(pair, AssociationPair):
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
