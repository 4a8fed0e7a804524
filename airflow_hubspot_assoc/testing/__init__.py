"""The HubSpot stand-in: a loopback HTTP server that behaves like HubSpot's associations API.

It serves batch create, default associations, batch read and labels for the v4 paths and the dated
versions (2026-03, 2026-09), plus the OAuth refresh endpoint, validating every request and answer
against HubSpot's published OpenAPI specs (vendored in ``specs/``). Tests, the demo, benchmarks and
users who test DAGs offline all use it; ``python -m airflow_hubspot_assoc.testing`` runs it alone.
"""

from __future__ import annotations

from airflow_hubspot_assoc.testing.config import (
    DEFAULT_TOKEN,
    FaultConfig,
    LabelConfig,
    LatencyConfig,
    OAuthApp,
    RateLimitConfig,
    StandInConfig,
)
from airflow_hubspot_assoc.testing.server import HubSpotStandIn
from airflow_hubspot_assoc.testing.stats import LoggedRequest, RequestRecord, Stats

__all__ = [
    "DEFAULT_TOKEN",
    "FaultConfig",
    "HubSpotStandIn",
    "LabelConfig",
    "LatencyConfig",
    "LoggedRequest",
    "OAuthApp",
    "RateLimitConfig",
    "RequestRecord",
    "StandInConfig",
    "Stats",
]
