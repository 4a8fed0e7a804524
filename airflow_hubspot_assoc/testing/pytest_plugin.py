"""pytest fixtures for the HubSpot stand-in (registered through the ``pytest11`` entry point).

``hubspot_standin`` gives each test a fresh stand-in with the default config. To configure it,
mark the test (or its class or module) with ``StandInConfig`` fields as keyword arguments,
nested sub-configs as dataclasses or dicts::

    @pytest.mark.hubspot_standin(rate_limit=RateLimitConfig(max_requests=5, interval_ms=1_000))
    def test_throttled(hubspot_standin): ...

    @pytest.mark.hubspot_standin(faults={"seed": 7, "error_5xx_ratio": 0.2})
    def test_flaky(hubspot_conn): ...

A marker may instead carry one positional :class:`StandInConfig`. The closest marker wins.

``hubspot_conn`` also points Airflow's ``hubspot_default`` connection at the stand-in (by setting
``AIRFLOW_CONN_HUBSPOT_DEFAULT``) and yields the stand-in. ``@pytest.mark.hubspot_conn(
api_version="2026-09", **extra)`` sets the connection's extra.

Both fail the test at teardown if the stand-in answered anything its spec does not allow: such a
test would be checking the client against a HubSpot that does not exist.

``run_dag`` is :func:`airflow_hubspot_assoc.testing.run_dag`, for tests that take their helpers as
fixtures.

pytest loads this module in every session of an environment where the provider is installed, most
of which never use it. So it imports nothing at module level beyond pytest: the stand-in (with
``jsonschema`` and the specs) and Airflow are imported when a fixture is set up
(``tests/testing/test_pytest_plugin.py`` holds this to a budget).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_hubspot_assoc.testing.config import StandInConfig
    from airflow_hubspot_assoc.testing.server import HubSpotStandIn


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hubspot_standin(config=None, **fields): configure the hubspot_standin fixture "
        "(a StandInConfig, or its fields as keyword arguments)",
    )
    config.addinivalue_line(
        "markers",
        "hubspot_conn(api_version='v4', **extra): the extra of the connection hubspot_conn sets",
    )


def _config_from_marker(request: pytest.FixtureRequest) -> StandInConfig:
    from airflow_hubspot_assoc.testing.config import StandInConfig

    marker = request.node.get_closest_marker("hubspot_standin")
    if marker is None:
        return StandInConfig()
    if marker.args:
        if len(marker.args) != 1 or not isinstance(marker.args[0], StandInConfig) or marker.kwargs:
            raise pytest.UsageError(
                "@pytest.mark.hubspot_standin takes one StandInConfig or StandInConfig fields as keywords"
            )
        return marker.args[0]
    return StandInConfig.from_dict(marker.kwargs)


@pytest.fixture
def hubspot_standin(request: pytest.FixtureRequest) -> Iterator[HubSpotStandIn]:
    """A running HubSpot stand-in for this test (see the module docs to configure it)."""
    from airflow_hubspot_assoc.testing.server import HubSpotStandIn

    with HubSpotStandIn(_config_from_marker(request)) as standin:
        yield standin
    stats = standin.stats
    if stats.response_violations:
        messages = "\n".join(stats.response_violation_messages[:20])
        pytest.fail(
            f"the HubSpot stand-in answered {stats.response_violations} response(s) that break "
            f"HubSpot's spec (a stand-in bug):\n{messages}"
        )


@pytest.fixture
def hubspot_conn(
    request: pytest.FixtureRequest, hubspot_standin: HubSpotStandIn, monkeypatch: pytest.MonkeyPatch
) -> HubSpotStandIn:
    """The stand-in, with ``AIRFLOW_CONN_HUBSPOT_DEFAULT`` pointing at it for this test."""
    marker = request.node.get_closest_marker("hubspot_conn")
    extra = dict(marker.kwargs) if marker is not None else {}
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", hubspot_standin.connection_uri(**extra))
    return hubspot_standin


@pytest.fixture
def run_dag() -> Callable[..., Any]:
    """:func:`airflow_hubspot_assoc.testing.run_dag`: ``run_dag(dag, **dag_test_kwargs)`` -> the DAG run."""
    from airflow_hubspot_assoc.testing.dags import run_dag

    return run_dag
