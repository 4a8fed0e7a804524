"""The stand-in's in-memory portal: association types (labels), records, associations.

Every key is a type id (``0-1``), so ``contacts`` and ``0-1`` in URLs reach the same data. Writes
store the inverse association too (HubSpot's associations are two-way), and each stored type
remembers when it becomes visible to batch read, which is how eventual consistency is modelled.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from airflow_hubspot_assoc.constants import MAX_RECORD_ID
from airflow_hubspot_assoc.testing.objects import PRIMARY_TYPE_IDS, default_type_id

# User-defined label ids start here; HubSpot's built-in ids stay below, made-up ones far above.
_FIRST_LABEL_ID = 1_000

Pair = tuple[str, str]
TypeKey = tuple[str, int]  # (category, typeId)
Row = tuple[str, str, list[TypeKey], list[TypeKey]]  # from id, to id, types, inverse types


@dataclass(frozen=True)
class AssociationType:
    """One association type of a pair of object types; ``label`` is None for unlabeled ones."""

    category: str
    type_id: int
    label: str | None = None

    @property
    def key(self) -> TypeKey:
        return (self.category, self.type_id)

    def as_spec_with_label(self) -> dict[str, object]:
        """HubSpot's ``AssociationSpecWithLabel`` (``label`` is left out when there is none)."""
        spec: dict[str, object] = {"category": self.category, "typeId": self.type_id}
        if self.label is not None:
            spec["label"] = self.label
        return spec


@dataclass(frozen=True)
class PairTypes:
    """A copy of one pair's types and their inverses, taken once per batch (no lock per input)."""

    types: dict[TypeKey, AssociationType]
    inverse: dict[TypeKey, TypeKey]


class LabelRegistry:
    """Association types per pair: HubSpot's built-in ones plus labels created at run time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[Pair, dict[TypeKey, AssociationType]] = {}
        self._inverse: dict[tuple[Pair, TypeKey], TypeKey] = {}
        self._names: dict[frozenset[str], set[str]] = {}  # internal names per unordered pair
        self._next_id = itertools.count(_FIRST_LABEL_ID)

    def _seeded(self, pair: Pair) -> dict[TypeKey, AssociationType]:
        """The types of ``pair``, built-in ones created on first use. Call with the lock held."""
        types = self._types.get(pair)
        if types is None:
            from_t, to_t = pair
            types = {}
            unlabeled = AssociationType("HUBSPOT_DEFINED", default_type_id(from_t, to_t))
            types[unlabeled.key] = unlabeled
            self._inverse[(pair, unlabeled.key)] = ("HUBSPOT_DEFINED", default_type_id(to_t, from_t))
            primary = PRIMARY_TYPE_IDS.get(pair)
            if primary is not None:
                spec = AssociationType("HUBSPOT_DEFINED", primary, "Primary")
                types[spec.key] = spec
                self._inverse[(pair, spec.key)] = ("HUBSPOT_DEFINED", PRIMARY_TYPE_IDS[(to_t, from_t)])
            self._types[pair] = types
        return types

    def types(self, from_t: str, to_t: str) -> list[AssociationType]:
        """Every association type of the pair, built-in ones first."""
        with self._lock:
            return list(self._seeded((from_t, to_t)).values())

    def pair(self, from_t: str, to_t: str) -> PairTypes:
        """The types of a pair and the inverse of each, as they are now."""
        with self._lock:
            types = dict(self._seeded((from_t, to_t)))
            inverse = {
                key: self._inverse[((from_t, to_t), key)]
                for key in types
                if ((from_t, to_t), key) in self._inverse
            }
        return PairTypes(types, inverse)

    def get(self, from_t: str, to_t: str, key: TypeKey) -> AssociationType | None:
        with self._lock:
            return self._seeded((from_t, to_t)).get(key)

    def default(self, from_t: str, to_t: str) -> AssociationType:
        """The unlabeled HUBSPOT_DEFINED type used by ``batch/associate/default``."""
        return AssociationType("HUBSPOT_DEFINED", default_type_id(from_t, to_t))

    def inverse(self, from_t: str, to_t: str, key: TypeKey) -> TypeKey | None:
        """The type of the reverse association (``to -> from``) that mirrors ``key``."""
        with self._lock:
            self._seeded((from_t, to_t))
            return self._inverse.get(((from_t, to_t), key))

    def add(
        self,
        from_t: str,
        to_t: str,
        label: str,
        category: str = "USER_DEFINED",
        inverse_label: str | None = None,
        name: str | None = None,
    ) -> tuple[AssociationType, AssociationType]:
        """Create a label and its inverse (``to -> from``); return both.

        ``name`` is the internal name (derived from the label when not given).

        :raises ValueError: when the pair already has a label of that label or internal name
            (case-insensitive), which HubSpot refuses too.
        """
        if category not in ("USER_DEFINED", "INTEGRATOR_DEFINED"):
            raise ValueError(f"labels are USER_DEFINED or INTEGRATOR_DEFINED, got {category!r}")
        if not label.strip():
            raise ValueError("a label cannot be empty")
        with self._lock:
            forward_types = self._seeded((from_t, to_t))
            if any(t.label and t.label.lower() == label.lower() for t in forward_types.values()):
                raise ValueError(f"label {label!r} already exists between {from_t} and {to_t}")
            internal = (name or label).strip().lower().replace(" ", "_")
            names = self._names.setdefault(frozenset((from_t, to_t)), set())
            if internal in names:
                raise ValueError(
                    f"an association label named {internal!r} already exists between {from_t} and {to_t}"
                )
            names.add(internal)
            forward = AssociationType(category, next(self._next_id), label)
            backward = AssociationType(category, next(self._next_id), inverse_label or label)
            forward_types[forward.key] = forward
            self._seeded((to_t, from_t))[backward.key] = backward
            self._inverse[((from_t, to_t), forward.key)] = backward.key
            self._inverse[((to_t, from_t), backward.key)] = forward.key
        return forward, backward


def canonical_id(raw: str) -> str | None:
    """The canonical form of a record id (decimal, no leading zeros), or None if it is not one."""
    if not raw.isascii() or not raw.isdigit():
        return None
    if raw[0] != "0" and len(raw) < 19:
        return raw  # the usual case: already canonical and far below 2^63
    value = int(raw)
    if not 0 < value <= MAX_RECORD_ID:
        return None
    return str(value)


class Records:
    """Which records exist: everything, except ids named missing and a seeded share of ids.

    Records given property values are ``present``: the seeded share never hides them.
    """

    def __init__(self, missing_ratio: float = 0.0, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._missing: dict[str, frozenset[str]] = {}
        self._present: dict[str, set[str]] = {}
        self._ratio = missing_ratio
        self._seed = str(seed).encode()

    def set_missing(self, type_id: str, ids: Iterable[str | int]) -> None:
        """Replace the set of ids of ``type_id`` that do not exist."""
        canonical = {canonical_id(str(i)) or str(i) for i in ids}
        with self._lock:
            self._missing[type_id] = frozenset(canonical)

    def add_present(self, type_id: str, ids: Iterable[str]) -> None:
        """Make records exist for sure (they have properties); they stop being missing."""
        ids = set(ids)
        with self._lock:
            self._present.setdefault(type_id, set()).update(ids)
            self._missing[type_id] = self._missing.get(type_id, frozenset()) - ids

    def remove(self, type_id: str, ids: Iterable[str]) -> None:
        """Make records stop existing (deleted, or merged into another), keeping other missing ids."""
        canonical = {canonical_id(str(i)) or str(i) for i in ids}
        with self._lock:
            self._present.get(type_id, set()).difference_update(canonical)
            self._missing[type_id] = self._missing.get(type_id, frozenset()) | canonical

    def exists(self, type_id: str, record_id: str) -> bool:
        """Whether a record exists; ids that are not valid record ids never do."""
        canonical = canonical_id(record_id)
        return canonical is not None and self.exists_canonical(type_id, canonical)

    def exists_canonical(self, type_id: str, canonical: str) -> bool:
        """:meth:`exists` for an id already in canonical form (the hot path of every batch)."""
        if canonical in self._missing.get(type_id, ()):
            return False
        if self._ratio <= 0 or canonical in self._present.get(type_id, ()):
            return True
        digest = hashlib.blake2b(
            b"%s:%s:%s" % (self._seed, type_id.encode(), canonical.encode()), digest_size=8
        )
        return int.from_bytes(digest.digest(), "big") / 2**64 >= self._ratio


class AssociationStore:
    """Associations per (from type, to type, from id): to id -> {type key: visible-from time}."""

    def __init__(self, *, keep: bool = True) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self._data: dict[Pair, dict[str, dict[str, dict[TypeKey, float]]]] = {}

    def add_many(
        self, from_t: str, to_t: str, rows: Iterable[Row], visible_at: float
    ) -> list[list[TypeKey]] | None:
        """Store associations and their inverses; re-adding one keeps its first visibility time.

        Returns, per row, every type now stored between its two records (None when not storing).
        """
        if not self._keep:
            return None
        now_between: list[list[TypeKey]] = []
        with self._lock:
            forward = self._data.setdefault((from_t, to_t), {})
            backward = self._data.setdefault((to_t, from_t), {})
            for from_id, to_id, keys, inverse_keys in rows:
                types = forward.setdefault(from_id, {}).setdefault(to_id, {})
                for key in keys:
                    types.setdefault(key, visible_at)
                reverse = backward.setdefault(to_id, {}).setdefault(from_id, {})
                for key in inverse_keys:
                    reverse.setdefault(key, visible_at)
                now_between.append(list(types))
        return now_between

    def remove(
        self, from_t: str, to_t: str, rows: Iterable[tuple[str, str, list[TypeKey] | None, list[TypeKey]]]
    ) -> int:
        """Remove associations and their inverses; return how many (pair, type) went, one way.

        A row's types ``None`` means every type between the two records (its inverse types are
        then ignored); the caller passes it for the unlabeled type too, whose removal HubSpot
        cascades to every label between the two records.
        """
        removed = 0
        with self._lock:
            forward = self._data.get((from_t, to_t), {})
            backward = self._data.get((to_t, from_t), {})
            for from_id, to_id, keys, inverse_keys in rows:
                types = forward.get(from_id, {}).get(to_id)
                reverse = backward.get(to_id, {}).get(from_id)
                if keys is None:
                    removed += len(types or ())
                    for side, a, b in ((forward, from_id, to_id), (backward, to_id, from_id)):
                        side.get(a, {}).pop(b, None)
                else:
                    removed += sum(1 for k in keys if types is not None and types.pop(k, None) is not None)
                    for key in inverse_keys:
                        if reverse is not None:
                            reverse.pop(key, None)
                for side, a, b in ((forward, from_id, to_id), (backward, to_id, from_id)):
                    if not side.get(a, {}).get(b, True):
                        del side[a][b]
                    if a in side and not side[a]:
                        del side[a]
        return removed

    def type_keys(self, from_t: str, to_t: str, from_id: str, to_id: str) -> list[TypeKey]:
        """Every type stored between two records (visible or not)."""
        with self._lock:
            return list(self._data.get((from_t, to_t), {}).get(from_id, {}).get(to_id, {}))

    def page(
        self, from_t: str, to_t: str, from_id: str, after: str | None, limit: int, now: float | None = None
    ) -> tuple[list[tuple[str, list[TypeKey]]], str | None]:
        """The visible associations of a record, in to-id order, ``limit`` at a time.

        The cursor is the last to id returned, so a page stays right when associations are added
        between two calls.
        """
        now = time.time() if now is None else now
        start = int(after) if after else 0
        with self._lock:
            by_to = self._data.get((from_t, to_t), {}).get(from_id, {})
            visible = [
                (int(to_id), [k for k, at in types.items() if at <= now]) for to_id, types in by_to.items()
            ]
        rows = sorted((to_id, keys) for to_id, keys in visible if keys and to_id > start)
        page = [(str(to_id), keys) for to_id, keys in rows[:limit]]
        cursor = page[-1][0] if len(rows) > limit else None
        return page, cursor

    def snapshot(self, from_t: str, to_t: str) -> set[tuple[str, str, str, int]]:
        """Every stored ``(from_id, to_id, category, typeId)`` of a pair, visible or not."""
        with self._lock:
            return {
                (from_id, to_id, category, type_id)
                for from_id, by_to in self._data.get((from_t, to_t), {}).items()
                for to_id, types in by_to.items()
                for (category, type_id) in types
            }

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
