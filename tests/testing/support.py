"""Helpers for talking to the stand-in over real HTTP and checking answers against the spec."""

from __future__ import annotations

from typing import Any

import requests

from airflow_hubspot_assoc.testing import HubSpotStandIn, spec

VERSIONS = spec.API_VERSIONS
BATCH_OPS = {"batch_create": "create", "batch_associate_default": "associate/default", "batch_read": "read"}


def path(version: str, endpoint: str, from_type: str = "contacts", to_type: str = "companies") -> str:
    """The URL path of an endpoint in an API version (the table in docs/architecture.md)."""
    if endpoint in ("labels", "labels_create"):
        return f"/crm/associations/{version}/{from_type}/{to_type}/labels"
    op = BATCH_OPS[endpoint]
    if version == "v4":
        return f"/crm/v4/associations/{from_type}/{to_type}/batch/{op}"
    return f"/crm/associations/{version}/{from_type}/{to_type}/batch/{op}"


def session(token: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def create_inputs(
    pairs: list[tuple[str, str]], type_id: int = 279, category: str = "HUBSPOT_DEFINED"
) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "from": {"id": f},
                "to": {"id": t},
                "types": [{"associationCategory": category, "associationTypeId": type_id}],
            }
            for f, t in pairs
        ]
    }


def default_inputs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"inputs": [{"from": {"id": f}, "to": {"id": t}} for f, t in pairs]}


def read_inputs(ids: list[str], after: str | None = None) -> dict[str, Any]:
    return {"inputs": [{"id": i, **({"after": after} if after else {})} for i in ids]}


def call(
    hs: HubSpotStandIn,
    version: str,
    endpoint: str,
    body: Any = None,
    *,
    from_type: str = "contacts",
    to_type: str = "companies",
    token: str | None = None,
    s: requests.Session | None = None,
    timeout: float = 10,
) -> requests.Response:
    """Call an endpoint; the answer must be valid against the spec unless it is a 429."""
    client = s or session(token or hs.token)
    url = hs.url + path(version, endpoint, from_type, to_type)
    if endpoint == "labels":
        response = client.get(url, timeout=timeout)
    else:
        response = client.post(url, json=body, timeout=timeout)
    assert_valid(version, endpoint, response)
    return response


def assert_valid(version: str, endpoint: str, response: requests.Response) -> Any:
    """Validate an answer with the spec of its version, like any client of HubSpot would."""
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    if response.status_code == 429:
        assert_rate_limit_body(body)
        return body
    violations = spec.validate_response(version, endpoint, response.status_code, body)
    assert violations == [], f"{version} {endpoint} {response.status_code}: {violations}\n{body}"
    if response.status_code >= 400:
        assert spec.error_schema(version).errors(body) == []
    return body


def assert_rate_limit_body(body: dict[str, Any]) -> None:
    """HubSpot's real 429 body (documented in the README, not in the spec)."""
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] in ("TEN_SECONDLY_ROLLING", "DAILY")
    assert body["correlationId"]
    assert "category" not in body
