"""Test helpers for the sensor and the trigger: associations created over plain HTTP, and batch records
built with the record module (independent of the operator and its load)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import requests

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.record import MAX_SAMPLE, BatchRecord
from airflow_hubspot_assoc.testing import HubSpotStandIn, LoggedRequest

UNLABELED = ("HUBSPOT_DEFINED", 279)  # contacts -> companies, HubSpot's default association
PRIMARY = ("HUBSPOT_DEFINED", 1)

Pairs = Sequence[tuple[str, str]]


def specs(types: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """Association types in the create shape."""
    return [{"associationCategory": c, "associationTypeId": t} for c, t in types]


def create(
    hs: HubSpotStandIn,
    pairs: Pairs,
    *,
    types: Sequence[tuple[str, int]] = (UNLABELED,),
    from_type: str = "contacts",
    to_type: str = "companies",
) -> dict[str, Any]:
    """Create associations through the stand-in's batch create (or associate/default for no types)."""
    if types:
        op = "create"
        inputs = [{"from": {"id": f}, "to": {"id": t}, "types": specs(types)} for f, t in pairs]
    else:
        op = "associate/default"
        inputs = [{"from": {"id": f}, "to": {"id": t}} for f, t in pairs]
    response = requests.post(
        f"{hs.url}/crm/v4/associations/{from_type}/{to_type}/batch/{op}",
        json={"inputs": inputs},
        headers={"Authorization": f"Bearer {hs.token}"},
        timeout=30,
    )
    assert response.status_code in (200, 201, 207), response.text
    return dict(response.json())


def record(
    pairs: Pairs,
    *,
    types: Sequence[tuple[str, int]] = (UNLABELED,),
    status: str = "COMPLETE",
    **overrides: Any,
) -> dict[str, Any]:
    """A batch record for ``pairs`` (all created), as the operator would return it; ``overrides`` are
    XCom keys, applied after serialising (so a test can also hand the sensor a malformed record)."""
    association_types = tuple(AssociationType(*t) for t in types)
    value = BatchRecord(
        status="COMPLETE",
        requested_at="2026-01-01T00:00:00.000Z",
        started_at="2026-01-01T00:00:00.000Z",
        completed_at="2026-01-01T00:00:01.000Z",
        from_type="contacts",
        to_type="companies",
        conn_id="hubspot_default",
        association_types=association_types,
        types_used=(association_types,),
        total=len(pairs),
        created=len(pairs),
        requests=1,
        source={"kind": "xcom", "description": f"{len(pairs)} pairs"},
        sample=tuple(AssociationPair(f, t, frozenset(association_types)) for f, t in pairs[:MAX_SAMPLE]),
        default_types=association_types,
    ).to_xcom()
    value.update(status=status, **overrides)
    return value


def reads(hs: HubSpotStandIn) -> list[LoggedRequest]:
    """The batch read requests the stand-in served, oldest first."""
    return [r for r in hs.requests if r.endpoint == "batch_read"]


def wait_visible(hs: HubSpotStandIn, seconds: float) -> None:
    """Sleep past the stand-in's visibility delay (for pairs that must be visible before a test)."""
    time.sleep(seconds + 0.05)
