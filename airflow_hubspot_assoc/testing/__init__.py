"""The HubSpot stand-in: a loopback HTTP server that behaves like HubSpot's associations API.

It serves batch create, default associations, batch read and labels for the v4 paths and the dated
versions (2026-03, 2026-09), plus the OAuth refresh endpoint, validating every request and answer
against HubSpot's published OpenAPI specs (vendored in ``specs/``). Tests, the demo, benchmarks and
users who test DAGs offline all use it; ``python -m airflow_hubspot_assoc.testing`` runs it alone.
:func:`run_dag` and :func:`load_dag` run a user's DAG in a test.

The names below are imported on first use: the pytest plugin lives in this package and is loaded in
every pytest session of an environment that has the provider, so importing the package must not
import the stand-in (``jsonschema`` and the specs) or Airflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_hubspot_assoc.testing.config import (
        DEFAULT_TOKEN,
        FaultConfig,
        GeneratedRecords,
        LabelConfig,
        LatencyConfig,
        OAuthApp,
        PropertyConfig,
        RateLimitConfig,
        SearchConfig,
        StandInConfig,
    )
    from airflow_hubspot_assoc.testing.dags import load_dag, run_dag
    from airflow_hubspot_assoc.testing.server import HubSpotStandIn
    from airflow_hubspot_assoc.testing.stats import LoggedRequest, RequestRecord, Stats

#: Public name -> the module that defines it.
_LAZY = {
    "DEFAULT_TOKEN": "config",
    "FaultConfig": "config",
    "GeneratedRecords": "config",
    "LabelConfig": "config",
    "LatencyConfig": "config",
    "OAuthApp": "config",
    "PropertyConfig": "config",
    "RateLimitConfig": "config",
    "SearchConfig": "config",
    "StandInConfig": "config",
    "HubSpotStandIn": "server",
    "LoggedRequest": "stats",
    "RequestRecord": "stats",
    "Stats": "stats",
    "load_dag": "dags",
    "run_dag": "dags",
}

__all__ = [
    "DEFAULT_TOKEN",
    "FaultConfig",
    "GeneratedRecords",
    "HubSpotStandIn",
    "LabelConfig",
    "LatencyConfig",
    "LoggedRequest",
    "OAuthApp",
    "PropertyConfig",
    "RateLimitConfig",
    "RequestRecord",
    "SearchConfig",
    "StandInConfig",
    "Stats",
    "load_dag",
    "run_dag",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # An AttributeError also lets ``from airflow_hubspot_assoc.testing import spec`` import the submodule.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
