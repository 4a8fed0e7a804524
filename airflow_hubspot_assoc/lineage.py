"""OpenLineage for the operator: what it read (files or an upstream task) and what it wrote.

Why a module of its own: the OpenLineage provider is optional. Everything that decides *which*
datasets a load touched is plain Python (here and in ``datasets``, tested without the provider); only
:func:`facets_on_start` and :func:`facets_on_complete` import the provider's classes, lazily, and
they return None instead of raising when it is missing or anything goes wrong, so lineage can never
fail a task.

The operator describes its load with plain values (:class:`LoadLineage`: object types, the path or
the upstream XComs, the portal or API host); this module never sees the operator. Datasets:

- input files: at start the operator's ``pairs_path`` (a glob stands for its fixed directory); at
  completion each file read (up to :data:`MAX_FILE_DATASETS`, else the path as given);
- XCom input: ``xcom://<dag_id>`` + ``<upstream task_id>`` (``<task_id>/<key>`` for another key);
- output: ``hubspot://<portal id or API host>`` + ``associations/<from>/<to>``, the same dataset as the
  asset from :func:`airflow_hubspot_assoc.assets.hubspot_associations_asset`; on completion with an
  ``outputStatistics`` facet counting the associations created.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc.datasets import (
    LineageDataset,
    associations_dataset,
    path_dataset,
    xcom_dataset,
)

if TYPE_CHECKING:
    from airflow_hubspot_assoc.record import BatchRecord

__all__ = [
    "MAX_FILE_DATASETS",
    "LineageDataset",
    "LoadLineage",
    "facets_on_complete",
    "facets_on_start",
    "input_datasets",
    "output_dataset",
]

log = logging.getLogger(__name__)

#: More input files than this are reported as the one path the operator was given.
MAX_FILE_DATASETS = 100


@dataclass(frozen=True)
class LoadLineage:
    """What a load reads and writes, as the operator describes it (plain values only)."""

    from_type: str
    to_type: str
    #: The operator's ``pairs_path`` as given; None for XCom input.
    pairs_path: str | None = None
    #: ``(task_id, key)`` of the upstream XComs the pairs come from.
    xcom_inputs: tuple[tuple[str, str], ...] = ()
    dag_id: str = "unknown"
    #: The connection's portal id, and its API base URL (named when there is no portal id).
    portal_id: str | None = None
    base_url: str | None = None


def input_datasets(load: LoadLineage, files: Sequence[str] | None = None) -> list[LineageDataset]:
    """What the load reads: ``files`` when known (and few enough), else its path, else XComs."""
    if load.pairs_path:
        if files and len(files) <= MAX_FILE_DATASETS:
            return sorted({path_dataset(f) for f in files})
        return [path_dataset(load.pairs_path)]
    return [xcom_dataset(load.dag_id, task_id, key) for task_id, key in load.xcom_inputs]


def output_dataset(load: LoadLineage) -> LineageDataset:
    """The associations dataset of the load's object pair, in its portal (or at its API host)."""
    return associations_dataset(
        load.from_type, load.to_type, portal_id=load.portal_id, base_url=load.base_url
    )


# -- OpenLineage facets (the provider is optional) ----------------------------------------------------
def _openlineage_classes() -> tuple[Any, Any, Any, Any] | None:
    try:
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        log.debug("OpenLineage provider not installed; no lineage reported")
        return None
    return OperatorLineage, Dataset, OutputDataset, OutputStatisticsOutputDatasetFacet


def _as_datasets(dataset_class: Any, datasets: Iterable[LineageDataset]) -> list[Any]:
    return [dataset_class(namespace=d.namespace, name=d.name) for d in datasets]


def facets_on_start(describe: Callable[[], LoadLineage]) -> Any:
    """``OperatorLineage`` with the input(s) and the associations output; None without the provider.

    :param describe: returns the load's description (called here, so that reading the connection
        for the portal id cannot fail the task either)
    """
    classes = _openlineage_classes()
    if classes is None:
        return None
    operator_lineage, dataset, _, _ = classes
    try:
        load = describe()
        return operator_lineage(
            inputs=_as_datasets(dataset, input_datasets(load)),
            outputs=_as_datasets(dataset, [output_dataset(load)]),
        )
    except Exception:
        log.warning("Could not compute OpenLineage facets on start", exc_info=True)
        return None


def facets_on_complete(
    describe: Callable[[], LoadLineage], files: Sequence[str] = (), record: BatchRecord | None = None
) -> Any:
    """Like :func:`facets_on_start`, with the files actually read and the count of associations created.

    ``record`` is None when the load did not get that far. A dry run wrote nothing, so it reports no
    output.
    """
    classes = _openlineage_classes()
    if classes is None:
        return None
    operator_lineage, dataset, output_class, statistics_facet = classes
    try:
        load = describe()
        inputs = _as_datasets(dataset, input_datasets(load, files or None))
        if record is not None and record.dry_run:
            return operator_lineage(inputs=inputs, outputs=[])
        target = output_dataset(load)
        output_facets = {}
        if record is not None:
            output_facets["outputStatistics"] = statistics_facet(rowCount=record.written)
        output = output_class(namespace=target.namespace, name=target.name, outputFacets=output_facets)
        return operator_lineage(inputs=inputs, outputs=[output])
    except Exception:
        log.warning("Could not compute OpenLineage facets on completion", exc_info=True)
        return None
