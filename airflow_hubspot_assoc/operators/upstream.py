"""Where a task's argument came from: the upstream XComs behind ``pairs``, for lineage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import XComArg


def dag_of(task: Any) -> Any:
    """The task's DAG, or None (a task outside a DAG raises on ``.dag``)."""
    try:
        return task.dag if getattr(task, "has_dag", lambda: True)() else None
    except (AttributeError, RuntimeError):
        return None


def upstream_xcoms(task: Any) -> list[tuple[str, str]]:
    """``(task_id, key)`` of the XComs the task's ``pairs`` came from, in order, without repeats.

    At run time ``pairs`` is already rendered; the DAG still holds the task as written (a
    ``MappedOperator`` for mapped tasks), where the ``XComArg`` can still be seen.
    """
    candidates: list[Any] = [getattr(task, "pairs", None)]
    dag = dag_of(task)
    original = getattr(dag, "task_dict", {}).get(getattr(task, "task_id", None)) if dag else None
    if original is not None and original is not task:
        candidates.append(getattr(original, "pairs", None))
        expand_input = getattr(original, "expand_input", None)
        for holder in (getattr(expand_input, "value", None), getattr(original, "partial_kwargs", None)):
            if isinstance(holder, Mapping):
                candidates.append(holder.get("pairs"))
    found: list[tuple[str, str]] = []
    for candidate in candidates:
        for upstream, key in XComArg.iter_xcom_references(candidate):
            ref = (upstream.task_id, key)
            if ref not in found:
                found.append(ref)
    return found
