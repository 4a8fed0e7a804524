"""The desired state of a sync: the input's pairs, checked, with business keys resolved, as triples.

Why triples: the set engine (``triples``) diffs ``(from_id, to_id, type_code)`` integers on local
disk with bounded memory. A pair with several types is several triples, so one type can leave the
desired state while another of the same pair stays. The type table (:class:`TypeTable`) gives each
``(category, typeId)`` a small code; it is stored with every snapshot and only ever grows, so a code
means the same type in every generation of one ``state_path``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_hubspot_assoc.association_types import AssociationType, Types
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.pairs import InvalidRow, Pair
from airflow_hubspot_assoc.survey import survey_input

if TYPE_CHECKING:
    from airflow_hubspot_assoc.association_types import TypeResolver
    from airflow_hubspot_assoc.failed_pairs import FailedPairsSink
    from airflow_hubspot_assoc.keys.resolver import KeyResolver
    from airflow_hubspot_assoc.sync.triples import TripleSpool


class TypeTable:
    """Codes of association types: the snapshot's table, extended by types the input adds."""

    def __init__(self, types: Iterable[tuple[str, int]] = ()) -> None:
        self._types: list[AssociationType] = [AssociationType(str(c), int(i)) for c, i in types]
        self._codes = {t: code for code, t in enumerate(self._types)}
        self._combos: dict[tuple[int, ...], Types] = {}

    def code(self, association_type: AssociationType) -> int:
        """The code of a type, a new one at the end when the table does not have it yet."""
        code = self._codes.get(association_type)
        if code is None:
            code = self._codes[association_type] = len(self._types)
            self._types.append(association_type)
        return code

    def find(self, category: str, type_id: int) -> int | None:
        """The code of a type, or None when the sync does not manage it."""
        return self._codes.get(AssociationType(category, type_id))

    def type_of(self, code: int) -> AssociationType:
        return self._types[code]

    def types_of(self, codes: tuple[int, ...]) -> Types:
        """The types of some codes as one shared tuple per combination (the load notes combinations
        by identity)."""
        types = self._combos.get(codes)
        if types is None:
            types = self._combos[codes] = tuple(self._types[c] for c in codes)
        return types

    def as_meta(self) -> tuple[tuple[str, int], ...]:
        """The table as the snapshot stores it: code i -> (category, typeId)."""
        return tuple((t.category, t.type_id) for t in self._types)

    def __len__(self) -> int:
        return len(self._types)


@dataclass
class DesiredCounts:
    """What reading the input found: rows, invalid ones, keys that did not resolve, triples added."""

    total: int = 0
    invalid: int = 0
    unresolved: int = 0
    triples: int = 0


def check_input(
    rows: Iterable[Pair | InvalidRow],
    resolver: TypeResolver,
    *,
    max_failed_ratio: float,
    keys: KeyResolver | None,
) -> int:
    """The validate pass, before any write: every row read once, labels and keys resolved.

    A sync needs a concrete type for every pair (the snapshot and HubSpot's read-back are compared
    type by type), so rows without one, and HubSpot's default association, are refused here.
    :return: the type ids the input names, for the caller to check against the object pair's types.
    """
    survey = survey_input(
        rows,
        resolver.default_types,
        max_failed_ratio=max_failed_ratio,
        on_pair=keys.collect if keys is not None else None,
    )
    if survey.untyped:
        raise HubSpotConfigError(
            f"{survey.untyped:,} rows name no association type and the operator names none: a sync "
            "manages named types only (association_type_id, association_label or per-row types); "
            "nothing was sent"
        )
    for label in sorted(survey.labels):
        resolver.label(label)
    if keys is not None:
        keys.resolve()
    return survey.total


def spool_desired(
    rows: Iterable[Pair | InvalidRow],
    resolver: TypeResolver,
    table: TypeTable,
    spool: TripleSpool,
    sink: FailedPairsSink,
    *,
    keys: KeyResolver | None,
) -> DesiredCounts:
    """The second pass: every valid pair's triples into ``spool``; invalid and unresolved rows into
    ``sink`` (they are accounted for, and they are not in the desired state)."""
    counts = DesiredCounts()
    add = spool.add
    for row in rows:
        counts.total += 1
        if isinstance(row, InvalidRow):
            counts.invalid += 1
            sink.add_invalid(row)
            continue
        if keys is not None:
            resolved = keys.apply(row)
            if not isinstance(resolved, Pair):
                counts.unresolved += 1
                sink.add_failure(resolved)
                continue
            row = resolved
        from_id, to_id = int(row.from_id), int(row.to_id)
        for association_type in resolver.types_of(row):
            add(from_id, to_id, table.code(association_type))
            counts.triples += 1
    return counts
