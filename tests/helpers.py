"""Helpers for running real DAGs in tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The tests run their DAGs the way the README tells users to.
from airflow_hubspot_assoc.testing.dags import run_dag as run_dag

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun


def task_results(dag_run: DagRun) -> dict[str, Any]:
    """Map task id (with ``[map_index]`` for mapped tasks) to its XCom return value."""
    results: dict[str, Any] = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        results[key] = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
    return results


def task_states(dag_run: DagRun) -> dict[str, str]:
    """Map task id (with ``[map_index]`` for mapped tasks) to its final state."""
    return {
        (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
        for ti in dag_run.get_task_instances()
    }
