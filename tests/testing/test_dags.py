"""``load_dag`` and ``run_dag``: a user's DAG file parsed and run in a test.

A fresh Airflow home is what tests/integration/test_readme.py runs the README's walk-through on;
here are the errors a user gets from ``load_dag`` and a run of a DAG loaded from a file.
"""

from __future__ import annotations

import textwrap

import pytest

from airflow_hubspot_assoc.testing import load_dag, run_dag

DAG_FILE = """
import pendulum
from airflow.sdk import DAG, task

for dag_id in {dag_ids!r}:
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):

        @task
        def hello() -> str:
            return "hello"

        hello()
"""


def write_dag_file(folder, *dag_ids, body=DAG_FILE):
    path = folder / "dags" / "my_dags.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body.format(dag_ids=list(dag_ids))), encoding="utf-8")
    return path


def test_load_dag_returns_the_only_dag_and_run_dag_runs_it(tmp_path, monkeypatch):
    write_dag_file(tmp_path, "testkit_single")
    monkeypatch.chdir(tmp_path)
    dag = load_dag("dags/my_dags.py")  # relative to the working directory, as in the README
    assert dag.dag_id == "testkit_single"
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert [ti.xcom_pull(task_ids="hello") for ti in dag_run.get_task_instances()] == ["hello"]


def test_load_dag_picks_a_dag_by_id(tmp_path):
    path = write_dag_file(tmp_path, "testkit_a", "testkit_b")
    assert load_dag(path, "testkit_b").dag_id == "testkit_b"
    with pytest.raises(LookupError, match=r"defines 2 DAGs \(\['testkit_a', 'testkit_b'\]\): pass dag_id"):
        load_dag(path)
    with pytest.raises(LookupError, match="has no DAG 'testkit_c'"):
        load_dag(path, "testkit_c")


def test_load_dag_reports_why_a_file_does_not_import(tmp_path):
    path = write_dag_file(
        tmp_path, body="import pendulum\nfrom airflow.sdk import DAG\nraise RuntimeError('boom {dag_ids}')\n"
    )
    with pytest.raises(ImportError, match="does not import") as raised:
        load_dag(path)
    assert "RuntimeError: boom" in str(raised.value)


def test_load_dag_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no DAG file at"):
        load_dag(tmp_path / "nope.py")
