"""Helpers for the objects, properties, search and archive endpoints over real HTTP."""

from __future__ import annotations

from typing import Any

import requests

from airflow_hubspot_assoc.testing import HubSpotStandIn, spec


def url_path(
    version: str, endpoint: str, object_type: str = "contacts", to_type: str = "companies", name: str = ""
) -> str:
    """The URL path of an endpoint in an API version (``v4``: the undated generation)."""
    if endpoint in ("objects_batch_read", "objects_search"):
        op = "batch/read" if endpoint == "objects_batch_read" else "search"
        base = "/crm/v3/objects" if version == "v4" else f"/crm/objects/{version}"
        return f"{base}/{object_type}/{op}"
    if endpoint == "property":
        base = "/crm/v3/properties" if version == "v4" else f"/crm/properties/{version}"
        return f"{base}/{object_type}/{name}"
    op = {"batch_archive": "archive", "batch_labels_archive": "labels/archive"}[endpoint]
    base = "/crm/v4/associations" if version == "v4" else f"/crm/associations/{version}"
    return f"{base}/{object_type}/{to_type}/batch/{op}"


def request(
    hs: HubSpotStandIn,
    version: str,
    endpoint: str,
    body: Any = None,
    *,
    object_type: str = "contacts",
    to_type: str = "companies",
    name: str = "",
    token: str | None = None,
) -> tuple[int, Any]:
    """Call an endpoint; any answer but a 429 must be valid against the spec of its version."""
    url = hs.url + url_path(version, endpoint, object_type, to_type, name)
    headers = {"Authorization": f"Bearer {token or hs.token}"}
    if endpoint == "property":
        response = requests.get(url, headers=headers, timeout=10)
    else:
        response = requests.post(url, json=body, headers=headers, timeout=10)
    answer = response.json() if response.content else None
    if response.status_code != 429:
        violations = spec.validate_response(version, endpoint, response.status_code, answer)
        assert violations == [], f"{version} {endpoint} {response.status_code}: {violations}\n{answer}"
        if response.status_code >= 400:
            assert spec.error_schema(version).errors(answer) == []
    return response.status_code, answer


def read_body(
    keys: list[str], id_property: str | None = None, properties: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [{"id": k} for k in keys],
        "properties": properties or [],
        "propertiesWithHistory": [],
    }
    if id_property is not None:
        body["idProperty"] = id_property
    return body


def search_body(
    filter_groups: list[list[dict[str, Any]]],
    *,
    properties: list[str] | None = None,
    limit: int = 10,
    after: str = "",
    query: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "filterGroups": [{"filters": filters} for filters in filter_groups],
        "properties": properties or [],
        "limit": limit,
        "after": after,
        "sorts": [],
    }
    if query is not None:
        body["query"] = query
    return body


def eq(name: str, value: str) -> dict[str, Any]:
    return {"propertyName": name, "operator": "EQ", "value": value}


def in_(name: str, values: list[str]) -> dict[str, Any]:
    return {"propertyName": name, "operator": "IN", "values": values}
