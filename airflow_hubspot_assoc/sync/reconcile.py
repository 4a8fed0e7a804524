"""The reconcile read: HubSpot's current associations of the from-records in scope, as triples.

Why: the snapshot says what the sync last applied, not what HubSpot holds now. Someone may have
removed a pair by hand, or a pair may have failed earlier; diffing against what HubSpot holds repairs
that drift. It costs reads (batch read, 1,000 from-ids a request, every page followed), so it is
optional. Only managed types (the codes of the type table) are kept: other types are never touched.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc import api

if TYPE_CHECKING:
    from airflow_hubspot_assoc.sync.desired import TypeTable
    from airflow_hubspot_assoc.sync.triples import TripleSpool

#: ``from_ids`` -> ``{from_id: [{"toObjectId", "associationTypes": [{"category", "typeId"}]}]}``.
ReadAssociations = Callable[[list[str]], Mapping[str, list[dict[str, Any]]]]


def merged_ids(*sorted_ids: Iterable[int]) -> Iterator[int]:
    """The distinct ids of several ascending streams, ascending (no set in memory)."""
    last = None
    for value in heapq.merge(*sorted_ids):
        if value != last:
            yield value
            last = value


def read_current(
    read: ReadAssociations,
    from_ids: Iterable[int],
    table: TypeTable,
    spool: TripleSpool,
    *,
    chunk: int = api.BATCH_READ_MAX_INPUTS,
) -> int:
    """Read the managed associations of ``from_ids`` into ``spool``, ``chunk`` ids per call.

    :return: how many from-ids were read.
    """
    done = 0
    batch: list[str] = []
    for from_id in from_ids:
        batch.append(str(from_id))
        if len(batch) >= chunk:
            _absorb(read(batch), table, spool)
            done += len(batch)
            batch = []
    if batch:
        _absorb(read(batch), table, spool)
        done += len(batch)
    return done


def _absorb(result: Mapping[str, list[dict[str, Any]]], table: TypeTable, spool: TripleSpool) -> None:
    add, find = spool.add, table.find
    for from_id, targets in result.items():
        source = int(from_id)
        for target in targets:
            to_id = int(target["toObjectId"])
            for association_type in target.get("associationTypes") or ():
                category, type_id = association_type.get("category"), association_type.get("typeId")
                if not isinstance(category, str) or not isinstance(type_id, int):
                    continue
                code = find(category, type_id)
                if code is not None:
                    add(source, to_id, code)
