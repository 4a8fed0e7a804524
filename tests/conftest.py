"""Test set-up shared by every test: a throw-away AIRFLOW_HOME with a migrated SQLite database, and
the tiers.

The environment is set before Airflow is imported anywhere, so every test (and every subprocess a
test starts) sees the same isolated Airflow installation.

Tiers: ``make test`` runs everything. ``make test-fast`` (``pytest --fast``) is the unit tier: it
leaves out the tests marked with one of ``SLOW_TIER_MARKERS`` and fails any test over its budgets of
CPU and wall time. Every test under ``tests/integration/`` is marked ``integration`` here, by folder,
so a test that starts Airflow processes cannot join the unit tier by being left unmarked, and a slow
test elsewhere fails the unit tier loudly instead of slowing it down quietly.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Generator, Iterator
from importlib.metadata import distributions
from pathlib import Path
from typing import TYPE_CHECKING

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

#: Migrated databases, one per set of installed Airflow distributions: ``airflow db migrate`` costs
#: several seconds of every session (a second Airflow start-up, in a subprocess), and what it writes
#: depends only on Airflow and its providers (nothing in it names this session's home).
_DB_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "hubspot-assoc" / "airflow-db"


def _airflow_distributions() -> str:
    names = sorted(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in distributions()
        if str(dist.metadata["Name"] or "").lower().startswith("apache-airflow")
    )
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _migrate_metadata_database(home: Path) -> None:
    """Give ``home`` a migrated ``airflow.db``: a copy of the cached one, or migrate once and cache it."""
    cached = _DB_CACHE / f"airflow-{_airflow_distributions()}.db"
    if cached.is_file():
        shutil.copyfile(cached, home / "airflow.db")
        return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _DB_CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")  # sessions running at once each write their own
    shutil.copyfile(home / "airflow.db", partial)
    os.replace(partial, cached)


_migrate_metadata_database(_AIRFLOW_HOME)

import pytest  # noqa: E402

if TYPE_CHECKING:
    import fsspec

from tests.helpers import run_dag  # noqa: E402

__all__ = ["run_dag"]

_INTEGRATION = Path(__file__).resolve().parent / "integration"
#: What the unit tier (``pytest --fast``) leaves out.
SLOW_TIER_MARKERS = ("integration", "e2e", "browser", "slow")
#: The unit tier's budgets per test. CPU time (this process and the children it waited for) is what
#: a test costs whatever else the machine runs; wall time, generous, catches a test that mostly waits.
FAST_CPU_SECONDS = 5.0
FAST_WALL_SECONDS = 30.0
_CPU_USED = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tiers", "test tiers (see tests/conftest.py)")
    group.addoption(
        "--fast",
        action="store_true",
        help=f"the unit tier: leave out tests marked {', '.join(SLOW_TIER_MARKERS)}, and fail any test "
        f"over {FAST_CPU_SECONDS:g} s of CPU or {FAST_WALL_SECONDS:g} s of wall time (unless given below)",
    )
    group.addoption("--max-test-cpu-seconds", type=float, help="fail every test whose call uses more CPU")
    group.addoption("--max-test-seconds", type=float, help="fail every test whose call takes longer")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In the unit tier, do not even import tests/integration/ (all of it is left out)."""
    if config.getoption("--fast") and collection_path == _INTEGRATION:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_INTEGRATION):
            item.add_marker(pytest.mark.integration)
    if not config.getoption("--fast"):
        return
    kept, left_out = [], []
    for item in items:
        slow = any(item.get_closest_marker(name) for name in SLOW_TIER_MARKERS)
        (left_out if slow else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def _budget(config: pytest.Config, option: str, fast_default: float) -> float | None:
    budget: float | None = config.getoption(option)
    if budget is None and config.getoption("--fast"):
        return fast_default
    return budget


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    started = _cpu_seconds()
    try:
        return (yield)
    finally:
        item.stash[_CPU_USED] = _cpu_seconds() - started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when != "call" or not report.passed:
        return report
    cpu_budget = _budget(item.config, "--max-test-cpu-seconds", FAST_CPU_SECONDS)
    wall_budget = _budget(item.config, "--max-test-seconds", FAST_WALL_SECONDS)
    cpu = item.stash.get(_CPU_USED, 0.0)
    over = []
    if cpu_budget is not None and cpu > cpu_budget:
        over.append(f"{cpu:.1f} s of CPU (budget {cpu_budget:g} s)")
    if wall_budget is not None and report.duration > wall_budget:
        over.append(f"{report.duration:.1f} s (budget {wall_budget:g} s)")
    if over:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} took {' and '.join(over)}, over the unit tier's budget: make it faster, "
            "mark it @pytest.mark.slow, or move it to tests/integration/"
        )
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove this session's AIRFLOW_HOME when every test passed (it is kept to look into otherwise)."""
    if exitstatus == 0:
        shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The isolated AIRFLOW_HOME of this test session."""
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def dag_runs_warmed() -> None:
    """Run one trivial DAG: the first task run in a process costs seconds (imports, the in-process
    execution API), which is paid here rather than charged to whichever test runs a DAG first."""
    import pendulum
    from airflow.sdk import DAG, task

    with DAG("warm_up", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:

        @task
        def nothing() -> None:
            return None

        nothing()
    run_dag(dag)


@pytest.fixture(autouse=True)
def _dag_runs_warmed_for_dag_tests(request: pytest.FixtureRequest) -> None:
    if hasattr(request.module, "run_dag"):
        request.getfixturevalue("dag_runs_warmed")


@pytest.fixture
def memory_bucket() -> Iterator[tuple[fsspec.AbstractFileSystem, str]]:
    """fsspec's process-wide memory filesystem and a fresh prefix in it, removed afterwards."""
    import fsspec

    fs = fsspec.filesystem("memory")
    prefix = f"/bucket-{uuid.uuid4().hex[:8]}"
    yield fs, prefix
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)


@pytest.fixture
def fresh_limiters() -> Iterator[None]:
    """No rate limiter learnt by an earlier test, before and after this one (the registry is per process)."""
    from airflow_hubspot_assoc.client.registry import reset_limiters

    reset_limiters()
    yield
    reset_limiters()
