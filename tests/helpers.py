"""Helpers for running real DAGs in tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.sdk import DAG


def run_dag(dag: DAG, **kwargs: Any) -> DagRun:
    """Run ``dag`` with ``dag.test()`` after writing it to the metadata database.

    Airflow 3.3's ``dag.test()`` only runs DAGs that a DAG bundle has serialized; tests build their
    DAGs inline, so they are serialized here the way the DAG processor would.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    try:
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    except ImportError:  # Airflow 3.1 (the oldest supported) keeps the DAG bag in airflow.models
        from airflow.models.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder="/nonexistent")
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**kwargs)


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
