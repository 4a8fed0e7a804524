"""Test set-up shared by every test: a throw-away AIRFLOW_HOME with a migrated SQLite database.

The environment is set before Airflow is imported anywhere, so every test (and every subprocess a
test starts) sees the same isolated Airflow installation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="hubspot-assoc-tests-"))
_DAGS_FOLDER = _AIRFLOW_HOME / "dags"
_DAGS_FOLDER.mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)
subprocess.run(
    [sys.executable, "-m", "airflow", "db", "migrate"],
    check=True,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)

import pytest  # noqa: E402

from tests.helpers import run_dag  # noqa: E402

__all__ = ["run_dag"]


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The isolated AIRFLOW_HOME of this test session."""
    return _AIRFLOW_HOME


@pytest.fixture
def fresh_limiters() -> Iterator[None]:
    """No rate limiter learnt by an earlier test, before and after this one (the registry is per process)."""
    from airflow_hubspot_assoc.rate_limit import reset_limiters

    reset_limiters()
    yield
    reset_limiters()
