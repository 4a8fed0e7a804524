"""Records with property values and the property definitions of each object type.

The association endpoints only need to know whether a record id exists (``store.Records``);
business keys need more: a contact's ``email``, a company's ``domain``, a unique custom property
such as ``external_id``. This module keeps those values, looks records up by them the way HubSpot
compares them, and knows which properties exist and which have unique values.

Only records given property values (in the config or through the Python API) can be found by a
property; every other id still "exists" for the association endpoints, as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_hubspot_assoc.testing.config import GeneratedRecords, PropertyConfig
from airflow_hubspot_assoc.testing.store import canonical_id

#: Properties every record answers, whatever was asked (HubSpot does the same).
ALWAYS = ("hs_object_id", "createdate", "lastmodifieddate")
#: Property values compared case-insensitively by batch read's ``idProperty`` (HubSpot's rule).
_CASELESS = frozenset({"email", "domain"})


@dataclass(frozen=True)
class PropertyDefinition:
    """One property of one object type, enough to answer ``GET /properties/.../{name}``."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    has_unique_value: bool = False
    hubspot_defined: bool = False

    def as_property(self, created: str) -> dict[str, Any]:
        """HubSpot's ``Property`` (every required field, plus ``hasUniqueValue``)."""
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "fieldType": self.field_type,
            "description": "",
            "groupName": "contactinformation" if self.hubspot_defined else "custom_properties",
            "options": [],
            "hasUniqueValue": self.has_unique_value,
            "hubspotDefined": self.hubspot_defined,
            "hidden": False,
            "formField": not self.hubspot_defined or self.name in ("email", "firstname", "lastname"),
            "calculated": False,
            "externalOptions": False,
            "displayOrder": -1,
            "archived": False,
            "createdAt": created,
            "updatedAt": created,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.name in ALWAYS,
            },
        }


def _builtin(name: str, label: str, kind: str = "string", field_type: str = "text") -> PropertyDefinition:
    return PropertyDefinition(name, label, kind, field_type, hubspot_defined=True)


_COMMON = (
    _builtin("hs_object_id", "Record ID", "number", "number"),
    _builtin("createdate", "Create Date", "datetime", "date"),
    _builtin("lastmodifieddate", "Last Modified Date", "datetime", "date"),
)
# HubSpot reports email and domain with hasUniqueValue false (email still works as idProperty).
BUILTIN_PROPERTIES: dict[str, tuple[PropertyDefinition, ...]] = {
    "0-1": (
        _builtin("email", "Email"),
        _builtin("firstname", "First Name"),
        _builtin("lastname", "Last Name"),
    ),
    "0-2": (_builtin("domain", "Company Domain Name"), _builtin("name", "Name")),
    "0-3": (_builtin("dealname", "Deal Name"),),
}
#: Properties answered when a request asks for none, per type (HubSpot's defaults).
DEFAULT_ANSWERED: dict[str, tuple[str, ...]] = {
    "0-1": ("email", "firstname", "lastname"),
    "0-2": ("domain", "name"),
    "0-3": ("dealname",),
}


def fold(value: str) -> str:
    """How search compares string values: trimmed and case-insensitive."""
    return value.strip().casefold()


def key_of(name: str, value: str) -> str:
    """How ``idProperty`` compares a value: emails and domains folded, others exactly."""
    return fold(value) if name in _CASELESS else value


@dataclass
class Record:
    """A record's id, property values and when it was created (epoch seconds)."""

    id: str
    properties: dict[str, str]
    created: float = field(default_factory=time.time)


class RecordStore:
    """Records with properties per type id, indexed by folded value for lookups and search."""

    def __init__(self, properties: Iterable[tuple[str, PropertyConfig]] = ()) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Record]] = {}
        self._index: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._definitions: dict[str, dict[str, PropertyDefinition]] = {}
        for type_id, config in properties:
            self.define(type_id, config)

    # -- definitions ---------------------------------------------------------------------------

    def define(self, type_id: str, config: PropertyConfig) -> None:
        """Add or replace a property definition of ``type_id``."""
        definition = PropertyDefinition(
            config.name, config.label, config.type, config.field_type, config.has_unique_value
        )
        with self._lock:
            self._defs(type_id)[config.name] = definition

    def definition(self, type_id: str, name: str) -> PropertyDefinition | None:
        with self._lock:
            return self._defs(type_id).get(name)

    def _defs(self, type_id: str) -> dict[str, PropertyDefinition]:
        """Definitions of a type, built-in ones first. Call with the lock held."""
        defs = self._definitions.get(type_id)
        if defs is None:
            builtin = (*_COMMON, *BUILTIN_PROPERTIES.get(type_id, ()))
            defs = self._definitions[type_id] = {d.name: d for d in builtin}
        return defs

    # -- writes --------------------------------------------------------------------------------

    def add(self, type_id: str, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add (or update) records ``{"id": ..., "properties": {...}}``; return their ids.

        :raises ValueError: for an id that is not a record id, a property the type does not
            define, or a value a unique property (or a contact's email) already has on another
            record; nothing is added then.
        """
        prepared = [self._prepare(type_id, r) for r in records]
        with self._lock:
            defs = self._defs(type_id)
            unique = [n for n, d in defs.items() if d.has_unique_value or (type_id, n) == ("0-1", "email")]
            self._check_unique(type_id, prepared, unique)
            for record in prepared:
                self._unindex(type_id, record.id)
                existing = self._records.setdefault(type_id, {}).get(record.id)
                if existing is not None:
                    record = Record(record.id, {**existing.properties, **record.properties}, existing.created)
                self._records[type_id][record.id] = record
                for name, value in record.properties.items():
                    self._index.setdefault((type_id, name), {}).setdefault(fold(value), set()).add(record.id)
        return [r.id for r in prepared]

    def _prepare(self, type_id: str, raw: Mapping[str, Any]) -> Record:
        record_id = canonical_id(str(raw.get("id", "")))
        if record_id is None:
            raise ValueError(f"not a record id: {raw.get('id')!r}")
        properties = {str(k): str(v) for k, v in dict(raw.get("properties") or {}).items() if v is not None}
        with self._lock:
            unknown = sorted(set(properties) - set(self._defs(type_id)))
        if unknown:
            raise ValueError(f"{type_id} has no properties {unknown}; define them with PropertyConfig")
        return Record(record_id, properties)

    def _check_unique(self, type_id: str, records: list[Record], unique: list[str]) -> None:
        """Refuse a value of a unique property that another record has. Call with the lock held."""
        existing = self._records.get(type_id, {})
        for name in unique:
            index = self._index.get((type_id, name), {})
            claimed: dict[str, str] = {}  # key -> id, within this batch
            for record in records:
                if name not in record.properties:
                    continue
                value = record.properties[name]
                key = key_of(name, value)
                owners = sorted(
                    i
                    for i in index.get(fold(value), ())
                    if i != record.id and key_of(name, existing[i].properties[name]) == key
                )
                if claimed.get(key, record.id) != record.id:
                    owners.append(claimed[key])
                if owners:
                    raise ValueError(
                        f"{type_id} {record.id}: {name}={value!r} is already the value of record "
                        f"{owners[0]} (the property has unique values)"
                    )
                claimed[key] = record.id

    def remove(self, type_id: str, ids: Iterable[str]) -> None:
        """Forget the property values of these records (see ``HubSpotStandIn.remove_records``)."""
        with self._lock:
            for raw in ids:
                record_id = canonical_id(str(raw)) or str(raw)
                self._unindex(type_id, record_id)
                self._records.get(type_id, {}).pop(record_id, None)

    def _unindex(self, type_id: str, record_id: str) -> None:
        record = self._records.get(type_id, {}).get(record_id)
        if record is None:
            return
        for name, value in record.properties.items():
            self._index.get((type_id, name), {}).get(fold(value), set()).discard(record_id)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, type_id: str, record_id: str) -> Record | None:
        with self._lock:
            return self._records.get(type_id, {}).get(record_id)

    def find(self, type_id: str, name: str, value: str) -> list[str]:
        """Ids of the records whose ``name`` equals ``value`` as ``idProperty`` compares it."""
        wanted = key_of(name, value)
        with self._lock:
            candidates = self._index.get((type_id, name), {}).get(fold(value), set())
            records = self._records.get(type_id, {})
            found = [i for i in candidates if key_of(name, records[i].properties[name]) == wanted]
        return sorted(found, key=int)

    def matching(self, type_id: str, name: str, values: Iterable[str]) -> set[str]:
        """Ids of the records whose ``name`` equals one of ``values`` as search compares them."""
        with self._lock:
            index = self._index.get((type_id, name), {})
            return {i for v in values for i in index.get(fold(v), ())}

    def all(self, type_id: str, ids: Iterable[str] | None = None) -> list[Record]:
        """Every record of a type with properties (or those of ``ids``), in id order (search's)."""
        with self._lock:
            by_id = self._records.get(type_id, {})
            records = list(by_id.values()) if ids is None else [by_id[i] for i in ids if i in by_id]
        return sorted(records, key=lambda r: int(r.id))


def generate(spec: GeneratedRecords) -> list[dict[str, Any]]:
    """The records a :class:`GeneratedRecords` describes, ready for :meth:`RecordStore.add`."""
    return [
        {
            "id": str(spec.first_id + n),
            "properties": {k: t.format(id=spec.first_id + n, n=n) for k, t in spec.properties.items()},
        }
        for n in range(spec.count)
    ]
