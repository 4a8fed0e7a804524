"""The portal's data beyond associations, seeded from the config: records with properties,
property definitions, missing records and labels; and the APIs answering from them.

The dispatcher routes requests and the Python API adds data; both reach the same objects here,
so what a test seeds through ``hs.add_records`` is what batch read and search answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_hubspot_assoc.testing.archive import ArchiveApi
from airflow_hubspot_assoc.testing.config import StandInConfig
from airflow_hubspot_assoc.testing.crm_records import RecordStore, generate
from airflow_hubspot_assoc.testing.handlers import AssociationsApi
from airflow_hubspot_assoc.testing.objects import resolve_object_type
from airflow_hubspot_assoc.testing.objects_api import ObjectsApi


def type_id(object_type: str) -> str:
    """The type id (``0-1``) of an object type as a URL or a config names it."""
    return resolve_object_type(object_type).type_id


class Portal:
    """Records, properties and the objects and archive APIs, next to the associations API."""

    def __init__(self, config: StandInConfig, api: AssociationsApi) -> None:
        self.api = api
        self.records = RecordStore((type_id(p.object_type), p) for p in config.properties)
        self.objects = ObjectsApi(self.records, api.records, config.search)
        self.archive = ArchiveApi(api.labels, api.records, api.store)
        for object_type, ids in config.missing_records.items():
            api.records.set_missing(type_id(object_type), ids)
        for label in config.labels:
            api.labels.add(type_id(label.from_type), type_id(label.to_type), label.label, label.category)
        for generated in config.generated_records:
            self.add_records(generated.object_type, generate(generated))
        for object_type, records in config.records.items():
            self.add_records(object_type, list(records))

    def add_records(self, object_type: str, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Give records property values (they then exist for sure); return their ids."""
        tid = type_id(object_type)
        ids = self.records.add(tid, records)
        self.api.records.add_present(tid, ids)
        return ids

    def remove_records(self, object_type: str, ids: Iterable[str | int]) -> None:
        """Delete records: their values go, and they stop existing for every endpoint."""
        tid, names = type_id(object_type), [str(i) for i in ids]
        self.records.remove(tid, names)
        self.api.records.remove(tid, names)
