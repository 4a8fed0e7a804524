"""The CRM objects and properties endpoints business keys need: batch read, search, a property.

``POST .../objects/{type}/batch/read`` reads records by id or, with ``idProperty``, by the value
of a property with unique values (a contact's ``email`` too, which HubSpot reports as not unique
but matches uniquely). Results echo the record ``id`` and the requested properties, never the key
sent, which is why a client asks for the id property and matches on its value. Keys not found go
in ``errors`` (207 in v3 and 2026-03, 200 in 2026-09, whose spec documents no 207).

``POST .../objects/{type}/search`` filters records with properties (filter groups OR'd, filters
within a group AND'd), in id order, with HubSpot's limits; its rate limit is the dispatcher's.

The request bodies have passed the spec already; the checks here are HubSpot's own rules.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_hubspot_assoc.testing.config import SearchConfig
from airflow_hubspot_assoc.testing.crm_records import ALWAYS, DEFAULT_ANSWERED, Record, RecordStore, fold
from airflow_hubspot_assoc.testing.errors import error_body, standard_error, validation_error
from airflow_hubspot_assoc.testing.handlers import iso
from airflow_hubspot_assoc.testing.objects import ObjectType
from airflow_hubspot_assoc.testing.store import Records, canonical_id

Answer = tuple[int, dict[str, Any]]
# Records that exist without property values (any id not missing) were created "long ago".
_EPOCH = 1_600_000_000.0


class ObjectsApi:
    """Answers the objects and properties endpoints from the record store."""

    def __init__(self, store: RecordStore, records: Records, search: SearchConfig) -> None:
        self.store = store
        self.records = records
        self.search_config = search

    # -- properties ----------------------------------------------------------------------------

    def get_property(self, object_t: ObjectType, name: str) -> Answer:
        """``GET .../properties/{type}/{name}``: the definition, or HubSpot's 404."""
        definition = self.store.definition(object_t.type_id, name)
        if definition is None:
            message = f"Unable to find property {name} for object type {object_t.name} ({object_t.type_id})."
            return 404, error_body("OBJECT_NOT_FOUND", message, context={"propertyName": [name]})
        return 200, definition.as_property(iso(_EPOCH))

    # -- batch read ----------------------------------------------------------------------------

    def batch_read(self, version: str, object_t: ObjectType, body: Mapping[str, Any]) -> Answer:
        """``batch/read`` by record id, or by a unique property's values with ``idProperty``."""
        started = time.time()
        id_property = body.get("idProperty") or None
        if id_property == "hs_object_id":
            id_property = None
        if id_property is not None:
            problem = self._check_id_property(object_t, id_property)
            if problem is not None:
                return 400, validation_error(problem)
        wanted = list(body["properties"])
        results: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for item in body["inputs"]:
            key = str(item["id"])
            found = self._lookup(object_t, id_property, key)
            if found is None:
                missing.append(key)
            elif found not in results:
                results[found] = self._object(object_t, found, wanted)
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": list(results.values()),
            "requestedAt": iso(started),
            "startedAt": iso(started),
            "completedAt": iso(time.time()),
        }
        if missing:
            kind = _singular(object_t)
            message = (
                f"Could not get some {kind} objects, they may be deleted or not exist. "
                "Check that ids are valid."
            )
            answer["errors"] = [standard_error("OBJECT_NOT_FOUND", message, {"ids": missing})]
            answer["numErrors"] = 1
        return (207 if missing and version != "2026-09" else 200), answer

    def _check_id_property(self, object_t: ObjectType, name: str) -> str | None:
        definition = self.store.definition(object_t.type_id, name)
        if definition is None:
            return f"Property {name} does not exist for object type {object_t.name}."
        if not definition.has_unique_value and (object_t.type_id, name) != ("0-1", "email"):
            return (
                f"Property {name} of {object_t.name} does not have unique values and cannot be "
                "used as idProperty."
            )
        return None

    def _lookup(self, object_t: ObjectType, id_property: str | None, key: str) -> str | None:
        if id_property is not None:
            ids = self.store.find(object_t.type_id, id_property, key)
            return ids[0] if ids else None
        record_id = canonical_id(key)
        if record_id is None or not self.records.exists_canonical(object_t.type_id, record_id):
            return None
        return record_id

    def _object(self, object_t: ObjectType, record_id: str, wanted: Sequence[str]) -> dict[str, Any]:
        """HubSpot's ``SimplePublicObject``: unset properties are left out (v3 allows no null)."""
        record = self.store.get(object_t.type_id, record_id) or Record(record_id, {}, _EPOCH)
        names = list(wanted) or list(DEFAULT_ANSWERED.get(object_t.type_id, ()))
        created = iso(record.created)
        builtin = {"hs_object_id": record.id, "createdate": created, "lastmodifieddate": created}
        properties = {n: record.properties[n] for n in names if n in record.properties}
        properties.update({n: builtin[n] for n in ALWAYS})
        return {
            "id": record.id,
            "properties": properties,
            "createdAt": created,
            "updatedAt": created,
            "archived": False,
        }

    # -- search --------------------------------------------------------------------------------

    def search(self, object_t: ObjectType, body: Mapping[str, Any]) -> Answer:
        """``search``: one page of the matching records, with ``total`` and the next cursor."""
        problem = self._check_search(object_t, body)
        if problem is not None:
            return 400, validation_error(problem)
        groups = body["filterGroups"]
        query = fold(body.get("query") or "")
        matches = [
            r
            for r in self._candidates(object_t, groups)
            if (not groups or any(self._group_matches(r, g["filters"]) for g in groups))
            and (not query or any(query in fold(v) for v in r.properties.values()))
        ]
        offset = int(body["after"] or 0)
        end = min(offset + body["limit"], len(matches), self.search_config.max_results)
        answer: dict[str, Any] = {
            "total": len(matches),
            "results": [self._object(object_t, r.id, body["properties"]) for r in matches[offset:end]],
        }
        if end < min(len(matches), self.search_config.max_results):
            answer["paging"] = {"next": {"after": str(end)}}
        return 200, answer

    def _check_search(self, object_t: ObjectType, body: Mapping[str, Any]) -> str | None:
        cfg = self.search_config
        limit, after, groups = body["limit"], body["after"], body["filterGroups"]
        if not 0 <= limit <= cfg.max_limit:
            return f"limit must be between 0 and {cfg.max_limit}, got {limit}."
        if after and not after.isdigit():
            return f"Invalid paging cursor after={after!r}."
        if int(after or 0) >= cfg.max_results:
            return f"Search returns at most {cfg.max_results} results; after={after} is beyond them."
        if len(body.get("query") or "") > cfg.max_query_chars:
            return f"query is longer than {cfg.max_query_chars} characters."
        if len(groups) > cfg.max_filter_groups:
            return f"Too many filterGroups: {len(groups)}, at most {cfg.max_filter_groups} are allowed."
        if sum(len(g["filters"]) for g in groups) > cfg.max_filters:
            return f"Too many filters: at most {cfg.max_filters} are allowed in one search."
        for group in groups:
            if len(group["filters"]) > cfg.max_filters_per_group:
                return f"Too many filters in a group: at most {cfg.max_filters_per_group} are allowed."
            for f in group["filters"]:
                name, operator = f["propertyName"], f["operator"]
                if self.store.definition(object_t.type_id, name) is None:
                    return f"Property {name} does not exist for object type {object_t.name}."
                if operator in ("IN", "NOT_IN") and not 0 < len(f.get("values") or ()) <= cfg.max_in_values:
                    return f"{operator} on {name} takes 1 to {cfg.max_in_values} values."
                if operator in _ONE_VALUE and "value" not in f:
                    return f"{operator} on {name} needs a value."
                if operator == "BETWEEN" and ("value" not in f or "highValue" not in f):
                    return f"BETWEEN on {name} needs value and highValue."
        return None

    def _candidates(self, object_t: ObjectType, groups: Sequence[Mapping[str, Any]]) -> list[Record]:
        """The records worth testing: through the index when every group has an EQ or IN filter."""
        ids: set[str] = set()
        for group in groups:
            keyed = [f for f in group["filters"] if f["operator"] in ("EQ", "IN")]
            if not keyed or keyed[0]["propertyName"] == "hs_object_id":
                return self.store.all(object_t.type_id)
            f = keyed[0]
            values = f["values"] if f["operator"] == "IN" else [f["value"]]
            ids |= self.store.matching(object_t.type_id, f["propertyName"], values)
        return self.store.all(object_t.type_id, ids if groups else None)

    @staticmethod
    def _group_matches(record: Record, filters: Sequence[Mapping[str, Any]]) -> bool:
        return all(_matches(record, f) for f in filters)


def _singular(object_t: ObjectType) -> str:
    """How HubSpot names an object type in messages: ``CONTACT``, ``COMPANY``, or its type id."""
    if object_t.custom:
        return object_t.type_id
    name = object_t.name.upper()
    return name[:-3] + "Y" if name.endswith("IES") else name.removesuffix("S")


_ONE_VALUE = frozenset({"EQ", "NEQ", "GT", "GTE", "LT", "LTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"})


def _value(record: Record, name: str) -> str | None:
    return record.id if name == "hs_object_id" else record.properties.get(name)


def _ordered(a: str, b: str) -> tuple[Any, Any]:
    """Compare as numbers when both are numbers, else as folded strings."""
    try:
        return float(a), float(b)
    except ValueError:
        return fold(a), fold(b)


def _matches(record: Record, f: Mapping[str, Any]) -> bool:
    """One filter on one record, comparing strings as HubSpot's search does (caselessly)."""
    operator, actual = f["operator"], _value(record, f["propertyName"])
    if operator == "HAS_PROPERTY":
        return actual is not None
    if operator == "NOT_HAS_PROPERTY":
        return actual is None
    if operator in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN") and actual is None:
        return True
    if actual is None:
        return False
    if operator in ("EQ", "NEQ"):
        return (fold(actual) == fold(f["value"])) == (operator == "EQ")
    if operator in ("IN", "NOT_IN"):
        return (fold(actual) in {fold(v) for v in f["values"]}) == (operator == "IN")
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = fold(f["value"]).strip("*")
        return (token in fold(actual)) == (operator == "CONTAINS_TOKEN")
    if operator == "BETWEEN":
        low, value = _ordered(f["value"], actual)
        high, value2 = _ordered(f["highValue"], actual)
        return bool(low <= value and value2 <= high)
    mine, theirs = _ordered(actual, f["value"])
    return bool(
        {"GT": mine > theirs, "GTE": mine >= theirs, "LT": mine < theirs, "LTE": mine <= theirs}[operator]
    )
