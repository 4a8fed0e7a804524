"""OpenLineage for the operator: what it read (files or an upstream task) and what it wrote.

Why a module of its own: the OpenLineage provider is optional. Everything that decides *which*
datasets a load touched is plain Python here (and tested without the provider); only
:func:`facets_on_start` and :func:`facets_on_complete` import the provider's classes, lazily, and
they return None instead of raising when it is missing or anything goes wrong, so lineage can never
fail a task.

Datasets, following OpenLineage's naming conventions:

- input files: ``s3://bucket`` + ``path/part-0.csv`` for object storage, ``file`` + ``/abs/path`` for
  local files. At start the operator's ``pairs_path`` (a glob stands for its fixed directory); at
  completion each file read (up to :data:`MAX_FILE_DATASETS`, else the path as given);
- XCom input: ``xcom://<dag_id>`` + ``<upstream task_id>`` (``<task_id>/<key>`` for another key);
- output: ``hubspot://<portal id or API host>`` + ``associations/<from>/<to>``, the same dataset as the
  asset from :func:`airflow_hubspot_assoc.assets.hubspot_associations_asset`; on completion with an
  ``outputStatistics`` facet counting the associations created.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_hubspot_assoc import assets
from airflow_hubspot_assoc.api import normalise_base_url
from airflow_hubspot_assoc.pairs.sources import has_scheme

if TYPE_CHECKING:
    from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
    from airflow_hubspot_assoc.pairs import PairReader

log = logging.getLogger(__name__)

#: More input files than this are reported as the one path the operator was given.
MAX_FILE_DATASETS = 100
XCOM_RETURN_KEY = "return_value"
_GLOB_CHARS = "*?["
# Set on the operator by ``remember_run`` at the end of ``execute``; read by ``facets_on_complete``.
_RUN_ATTRIBUTE = "_hubspot_lineage_run"


@dataclass(frozen=True, order=True)
class LineageDataset:
    """An OpenLineage dataset identity (namespace + name), independent of the provider's classes."""

    namespace: str
    name: str


@dataclass(frozen=True)
class RunFacts:
    """What ``execute`` learnt that the start of a run cannot know: the files and the counts."""

    files: tuple[str, ...]
    record: Mapping[str, Any]


# -- datasets (pure) -------------------------------------------------------------------------------
def path_dataset(path: str) -> LineageDataset:
    """The dataset of a file, directory or glob: ``scheme://bucket`` + key, or ``file`` + absolute path."""
    text = str(path).strip()
    cut = min((i for i in (text.find(c) for c in _GLOB_CHARS) if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut].rsplit("/", 1)[0] or "/"
    if has_scheme(text):
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return LineageDataset("file", parts.path.rstrip("/") or "/")
        return LineageDataset(f"{scheme}://{parts.netloc}", parts.path.strip("/"))
    return LineageDataset("file", os.path.abspath(text).rstrip("/") or "/")


def xcom_dataset(dag_id: str, task_id: str, key: str = XCOM_RETURN_KEY) -> LineageDataset:
    """The dataset standing for an upstream task's XCom value."""
    name = task_id if key == XCOM_RETURN_KEY else f"{task_id}/{key}"
    return LineageDataset(f"xcom://{dag_id}", name)


def associations_dataset(
    from_type: str, to_type: str, *, portal_id: str | None, base_url: str | None
) -> LineageDataset:
    """The output: the associations of the pair in the portal (or at the API host, without a portal)."""
    host = urlsplit(base_url).netloc if base_url else None
    uri = assets.associations_uri(from_type, to_type, portal_id, host=host)
    dataset = assets.asset_dataset(uri)
    assert dataset is not None  # associations_uri builds only URIs that parse
    return dataset


def _dag_of(operator: Any) -> Any:
    """The operator's DAG, or None (an operator outside a DAG raises on ``.dag``)."""
    try:
        return operator.dag if getattr(operator, "has_dag", lambda: True)() else None
    except (AttributeError, RuntimeError):
        return None


def xcom_references(operator: Any) -> list[tuple[str, str]]:
    """``(task_id, key)`` of the XComs the operator's ``pairs`` came from, in order, without repeats.

    At run time ``pairs`` is already rendered; the DAG still holds the task as written (a
    ``MappedOperator`` for mapped tasks), where the ``XComArg`` can still be seen.
    """
    from airflow.sdk.definitions.xcom_arg import XComArg

    candidates: list[Any] = [getattr(operator, "pairs", None)]
    dag = _dag_of(operator)
    original = getattr(dag, "task_dict", {}).get(getattr(operator, "task_id", None)) if dag else None
    if original is not None and original is not operator:
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


def input_datasets(operator: Any, files: Sequence[str] | None = None) -> list[LineageDataset]:
    """What the operator reads: ``files`` when known (and few enough), else its path, else XComs."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    pairs_path = getattr(operator, "pairs_path", None)
    if pairs_path is not None and not isinstance(pairs_path, XComArg) and str(pairs_path):
        if files and len(files) <= MAX_FILE_DATASETS:
            return sorted({path_dataset(f) for f in files})
        return [path_dataset(str(pairs_path))]
    dag = _dag_of(operator)
    dag_id = getattr(dag, "dag_id", None) or "unknown"
    return [xcom_dataset(dag_id, task_id, key) for task_id, key in xcom_references(operator)]


def connection_location(conn_id: str) -> tuple[str | None, str | None]:
    """``(portal_id, base_url)`` of a HubSpot connection (reads the connection, sends nothing)."""
    from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

    conn = HubSpotHook.get_connection(conn_id)
    portal = conn.extra_dejson.get("portal_id")
    base_url = normalise_base_url(conn.host or HubSpotHook.default_host, conn.port)
    return (str(portal) if portal not in (None, "") else None), base_url


def output_dataset(operator: BatchCreateAssociationsOperator) -> LineageDataset:
    """The associations dataset of the operator's object pair, in its connection's portal."""
    portal_id, base_url = connection_location(str(operator.hubspot_conn_id))
    return associations_dataset(
        str(operator.from_object_type),
        str(operator.to_object_type),
        portal_id=portal_id,
        base_url=base_url,
    )


# -- the operator's side ---------------------------------------------------------------------------
def remember_run(operator: Any, reader: PairReader, record: Mapping[str, Any]) -> None:
    """Keep the files read and the record on the operator for ``facets_on_complete``."""
    try:
        files = tuple(reader.files)
    except Exception:  # listing again is best effort: lineage must not fail the task
        files = ()
    setattr(operator, _RUN_ATTRIBUTE, RunFacts(files=files, record=dict(record)))


def run_facts(operator: Any) -> RunFacts | None:
    """What :func:`remember_run` kept, if ``execute`` got that far."""
    facts = getattr(operator, _RUN_ATTRIBUTE, None)
    return facts if isinstance(facts, RunFacts) else None


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


def facets_on_start(operator: BatchCreateAssociationsOperator) -> Any:
    """``OperatorLineage`` with the input(s) and the associations output; None without the provider."""
    classes = _openlineage_classes()
    if classes is None:
        return None
    operator_lineage, dataset, _, _ = classes
    try:
        return operator_lineage(
            inputs=_as_datasets(dataset, input_datasets(operator)),
            outputs=_as_datasets(dataset, [output_dataset(operator)]),
        )
    except Exception:
        log.warning("Could not compute OpenLineage facets on start", exc_info=True)
        return None


def facets_on_complete(operator: BatchCreateAssociationsOperator, task_instance: Any = None) -> Any:
    """Like :func:`facets_on_start`, with the files actually read and the count of associations created.

    A dry run wrote nothing, so it reports no output.
    """
    classes = _openlineage_classes()
    if classes is None:
        return None
    operator_lineage, dataset, output_class, statistics_facet = classes
    try:
        facts = run_facts(operator)
        inputs = _as_datasets(dataset, input_datasets(operator, facts.files if facts else None))
        record = facts.record if facts else {}
        if record.get("dryRun"):
            return operator_lineage(inputs=inputs, outputs=[])
        target = output_dataset(operator)
        output_facets = {}
        if facts is not None:
            output_facets["outputStatistics"] = statistics_facet(rowCount=int(record.get("created") or 0))
        output = output_class(namespace=target.namespace, name=target.name, outputFacets=output_facets)
        return operator_lineage(inputs=inputs, outputs=[output])
    except Exception:
        log.warning("Could not compute OpenLineage facets on completion", exc_info=True)
        return None
