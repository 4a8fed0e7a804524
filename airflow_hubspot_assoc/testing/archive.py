"""Removing associations: ``batch/archive`` (every type between each pair) and
``batch/labels/archive`` (only the given types).

HubSpot cascades the removal of a pair's unlabeled type to every labelled type between the two
records ("Deleting an unlabeled association will also delete all labeled associations between
those two objects"), so archiving it here empties the pair, both ways. v4 answers 204 without a
body whatever happened; the dated versions answer 200 with a ``BatchResponse`` whose ``errors``
name the inputs that could not be applied (a record that does not exist, a type the pair does
not have).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_hubspot_assoc.testing.errors import standard_error
from airflow_hubspot_assoc.testing.handlers import batch_body
from airflow_hubspot_assoc.testing.objects import ObjectType
from airflow_hubspot_assoc.testing.store import (
    AssociationStore,
    LabelRegistry,
    Records,
    TypeKey,
    canonical_id,
)

#: (status, body or None, associations removed)
ArchiveAnswer = tuple[int, dict[str, Any] | None, int]
_Row = tuple[str, str, list[TypeKey] | None, list[TypeKey]]


class ArchiveApi:
    """The two archive endpoints over the portal's labels, records and associations."""

    def __init__(self, labels: LabelRegistry, records: Records, store: AssociationStore) -> None:
        self.labels = labels
        self.records = records
        self.store = store

    def batch_archive(
        self, version: str, from_t: ObjectType, to_t: ObjectType, inputs: Sequence[Mapping[str, Any]]
    ) -> ArchiveAnswer:
        """``batch/archive``: every association between ``from`` and each of its ``to`` ids."""
        started = time.time()
        rows: list[_Row] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            for to in item["to"]:
                ids = self._ids(from_t, to_t, str(item["from"]["id"]), str(to["id"]))
                if isinstance(ids, dict):
                    errors.append(ids)
                else:
                    rows.append((*ids, None, []))
        return self._answer(version, self.store.remove(from_t.type_id, to_t.type_id, rows), errors, started)

    def labels_archive(
        self, version: str, from_t: ObjectType, to_t: ObjectType, inputs: Sequence[Mapping[str, Any]]
    ) -> ArchiveAnswer:
        """``batch/labels/archive``: only the given types (the unlabeled one cascades)."""
        started = time.time()
        pair = self.labels.pair(from_t.type_id, to_t.type_id)
        default = self.labels.default(from_t.type_id, to_t.type_id).key
        rows: list[_Row] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            ids = self._ids(from_t, to_t, str(item["from"]["id"]), str(item["to"]["id"]))
            if isinstance(ids, dict):
                errors.append(ids)
                continue
            keys = [(t["associationCategory"], t["associationTypeId"]) for t in item["types"]]
            unknown = [k for k in keys if k not in pair.types]
            if unknown or not keys:
                described = ", ".join(f"{tid} ({cat})" for cat, tid in unknown) or "none"
                errors.append(
                    standard_error(
                        "VALIDATION_ERROR",
                        f"Association types {described} are not valid between {from_t.name} and "
                        f"{to_t.name}; nothing was archived between {ids[0]} and {ids[1]}.",
                        {"fromObjectId": [ids[0]], "toObjectId": [ids[1]]},
                    )
                )
                continue
            if default in keys:
                rows.append((*ids, None, []))
            else:
                rows.append((*ids, keys, [pair.inverse.get(k, k) for k in keys]))
        return self._answer(version, self.store.remove(from_t.type_id, to_t.type_id, rows), errors, started)

    def _ids(
        self, from_t: ObjectType, to_t: ObjectType, raw_from: str, raw_to: str
    ) -> tuple[str, str] | dict[str, Any]:
        """The canonical ids of a pair, or the error naming those of its records that are missing."""
        from_id, to_id = canonical_id(raw_from), canonical_id(raw_to)
        from_ok = from_id is not None and self.records.exists_canonical(from_t.type_id, from_id)
        to_ok = to_id is not None and self.records.exists_canonical(to_t.type_id, to_id)
        if from_ok and to_ok and from_id is not None and to_id is not None:
            return from_id, to_id
        context: dict[str, list[str]] = {}
        if not from_ok:
            context["fromObjectId"] = [raw_from]
        if not to_ok:
            context["toObjectId"] = [raw_to]
        names = [f"{from_t.name} {raw_from}"] if not from_ok else []
        names += [f"{to_t.name} {raw_to}"] if not to_ok else []
        verb = "does" if len(names) == 1 else "do"
        message = f"{' and '.join(names)} {verb} not exist; nothing was archived."
        return standard_error("OBJECT_NOT_FOUND", message, context)

    @staticmethod
    def _answer(version: str, removed: int, errors: list[dict[str, Any]], started: float) -> ArchiveAnswer:
        if version == "v4":
            return 204, None, removed
        return 200, batch_body("COMPLETE", [], errors, started), removed
