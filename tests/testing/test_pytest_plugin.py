"""The pytest plugin: fixtures, their configuration, and failing a test on invalid answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from airflow_hubspot_assoc.testing import RateLimitConfig, StandInConfig
from tests.testing.support import call, read_inputs


def test_default_fixture(hubspot_standin):
    assert hubspot_standin.running
    assert hubspot_standin.config == StandInConfig()
    assert call(hubspot_standin, "v4", "batch_read", read_inputs(["1"])).status_code == 200


@pytest.mark.hubspot_standin(rate_limit={"max_requests": 9}, read_page_size=2)
def test_marker_with_fields(hubspot_standin):
    assert hubspot_standin.config.rate_limit == RateLimitConfig(max_requests=9)
    assert hubspot_standin.config.read_page_size == 2


@pytest.mark.hubspot_standin(StandInConfig(seed=99))
def test_marker_with_a_config(hubspot_standin):
    assert hubspot_standin.config.seed == 99


@pytest.mark.hubspot_conn(api_version="2026-09", timeout=5)
def test_hubspot_conn_sets_the_airflow_connection(hubspot_conn):
    connection = json.loads(os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    assert connection == {
        "conn_type": "hubspot",
        "host": hubspot_conn.url,
        "password": hubspot_conn.token,
        "extra": {"api_version": "2026-09", "timeout": 5},
    }


def test_fixture_fails_a_test_when_the_stand_in_breaks_the_spec(tmp_path):
    """Run a throw-away test session (outside this repo's conftest) whose stand-in misbehaves."""
    (tmp_path / "test_broken.py").write_text(
        textwrap.dedent(
            """
            import requests

            def test_broken(hubspot_standin):
                hubspot_standin._dispatcher.api.list_labels = lambda *args: (200, {"nope": 1})
                url = hubspot_standin.url + "/crm/associations/v4/contacts/companies/labels"
                headers = {"Authorization": "Bearer " + hubspot_standin.token}
                assert requests.get(url, headers=headers, timeout=5).status_code == 200

            def test_fine(hubspot_standin):
                pass
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_broken.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    # The test body passed; its teardown is what fails it.
    assert "2 passed, 1 error" in result.stdout
    assert "ERROR test_broken.py::test_broken" in result.stdout
    assert "break HubSpot's spec" in result.stdout
    assert "'results' is a required property" in result.stdout


#: What loading the plugin may import beyond pytest: its own package, nothing of the stand-in.
PLUGIN_MODULES = {
    "airflow_hubspot_assoc",
    "airflow_hubspot_assoc.testing",
    "airflow_hubspot_assoc.testing.pytest_plugin",
}
#: The budget of the plugin's import at pytest start-up (it takes about 1 ms; the stand-in took 230).
PLUGIN_IMPORT_BUDGET_US = 50_000


def test_loading_the_plugin_imports_nothing_until_a_fixture_is_used():
    """pytest loads the plugin in every session where the provider is installed, most never use it.

    Measured as in issue 16: ``python -X importtime``, cumulative microseconds of the plugin module,
    in a fresh interpreter that imported pytest first.
    """
    code = textwrap.dedent(
        """
        import json, sys
        import pytest
        before = set(sys.modules)
        import airflow_hubspot_assoc.testing.pytest_plugin
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = set(json.loads(result.stdout))
    assert imported - PLUGIN_MODULES == set(), "the plugin imports more than its own package at start-up"
    line = re.search(
        r"^import time:\s+\d+ \|\s+(\d+) \| airflow_hubspot_assoc\.testing\.pytest_plugin$",
        result.stderr,
        re.MULTILINE,
    )
    assert line is not None, result.stderr[-2000:]
    assert int(line[1]) < PLUGIN_IMPORT_BUDGET_US


def test_the_run_dag_fixture_is_the_function(run_dag):
    from airflow_hubspot_assoc.testing import run_dag as function

    assert run_dag is function


def test_the_package_still_offers_its_names_and_submodules():
    import airflow_hubspot_assoc.testing as testing
    from airflow_hubspot_assoc.testing import spec

    assert sorted(testing.__all__) == sorted(testing._LAZY)
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    assert spec.__name__ == "airflow_hubspot_assoc.testing.spec"
    with pytest.raises(AttributeError):
        testing.no_such_name  # noqa: B018
