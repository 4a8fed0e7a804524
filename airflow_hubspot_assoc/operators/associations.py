"""``BatchCreateAssociationsOperator``: mirror relationships from XCom or files into HubSpot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc.operators.base import (
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    BatchAssociationsOperatorBase,
)
from airflow_hubspot_assoc.operators.labels import LabelsOnDemand

if TYPE_CHECKING:
    from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

__all__ = ["MAX_BATCH_SIZE", "MAX_CONCURRENCY", "BatchCreateAssociationsOperator"]


class BatchCreateAssociationsOperator(BatchAssociationsOperatorBase):
    """Create HubSpot associations for pairs of record ids, streamed in batches; account for every pair.

    Pairs come from XCom (``pairs``) or from files (``pairs_path``: CSV with a header, JSON Lines, a
    JSON array or Parquet, optionally ``.gz``, a directory or glob of parts, any ``ObjectStoragePath``
    URL). The whole input is validated before the first write; then batches of ``batch_size`` are sent
    with up to ``max_concurrency`` requests in flight, or, when HubSpot announces a rolling rate-limit
    window, as many as the window has room for (``max_burst``), paced by the hook's rate limiter.

    :param from_object_type: object type of the ``from`` records, e.g. ``contacts`` or ``2-123``
        (templated)
    :param to_object_type: object type of the ``to`` records (templated)
    :param pairs: a list of ``[from_id, to_id]``, of dicts with the id fields, or of HubSpot inputs
        ``{"from": {"id"}, "to": {"id"}, "types": [...]}``; usually an ``XComArg`` (templated)
    :param pairs_path: a file, directory or glob, local or any object-storage URL (templated)
    :param from_id_field: column or key of the ``from`` id
    :param to_id_field: column or key of the ``to`` id
    :param association_type_id: the association type id (with ``association_category``) (templated)
    :param association_category: ``HUBSPOT_DEFINED`` (default), ``USER_DEFINED``, ``INTEGRATOR_DEFINED``
    :param association_label: a label name, resolved once through the labels API (templated); with
        neither this nor ``association_type_id``, HubSpot's default association is created
    :param batch_size: inputs per request, 1 to 2,000 (HubSpot's own cap is 100, the default)
    :param max_concurrency: requests in flight while HubSpot announces no rate limit (its association
        endpoints are exempt from the 10-second limit: latency then bounds throughput), 1 to 64
    :param max_burst: requests in flight while HubSpot announces a rolling window (never below
        ``max_concurrency``); None (default): as many as the window has room for, at most 250, so that
        each window's requests go out together and the load takes the least time the window allows
    :param max_failed_ratio: fail the task when failed and invalid pairs exceed this share of the input
        (checked after everything else was sent); above 0, invalid rows are reported instead of stopping
    :param failed_pairs_path: where to write failed pairs as JSON Lines (templated); ``{map_index}``,
        ``{input_name}`` and ``{input_dir}`` are filled in, so mapped tasks can write next to their input
    :param checkpoint_path: a directory (local or object storage) every worker can reach, where the load
        saves its progress so that a retry resumes instead of sending everything again (templated);
        defaults to ``_checkpoints`` beside ``failed_pairs_path``; without either, no checkpoints
    :param checkpoint_interval: least seconds between two checkpoint writes; 0 (default) writes one
        after every commit, with one write in flight (commits made meanwhile coalesce into the next)
    :param ledger_path: a folder (local or object storage, templated; ``{run_id}``, ``{map_index}``,
        ``{dag_id}``, ``{task_id}`` filled in) where the load records exactly what it changed, per pair,
        so that ``RevertAssociationsOperator`` can undo it; it costs one batch read per 1,000 distinct
        from ids before the first write (``ledgerReads`` in the record); with business keys, of the
        resolved record ids.
    :param create_missing_labels: create a label name (the operator's or a row's) that the object
        pair lacks, through the labels API, once and before any write (``USER_DEFINED``, with an
        internal ``name`` derived from the label); without it an unknown label fails before any write,
        listing the labels that exist. A dry run only logs the labels it would create.
    :param association_inverse_label: the inverse label of ``association_label`` when it is created
        (templated)
    :param dry_run: read, validate and resolve labels; send nothing
    :param progress_interval: seconds between progress lines in the log
    :param hubspot_conn_id: the HubSpot connection (templated)
    :return: the batch record (see the README): status, counts, bounded errors and sample.
    """

    operation = "create"

    template_fields: Sequence[str] = (
        *BatchAssociationsOperatorBase.template_fields,
        "association_inverse_label",
    )

    def __init__(
        self,
        *,
        create_missing_labels: bool = False,
        association_inverse_label: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if association_inverse_label is not None and not (
            create_missing_labels and self.association_label is not None
        ):
            raise ValueError(
                f"association_inverse_label ({association_inverse_label!r}) names the inverse of a label "
                "created on demand: pass it with association_label and create_missing_labels=True"
            )
        self.create_missing_labels = bool(create_missing_labels)
        self.association_inverse_label = association_inverse_label

    def _label_resolver(
        self, hook: HubSpotHook, from_type: str, to_type: str
    ) -> Callable[[str], tuple[str, int]]:
        resolve = super()._label_resolver(hook, from_type, to_type)
        if not self.create_missing_labels:
            return resolve
        inverse = (
            {str(self.association_label): str(self.association_inverse_label)}
            if self.association_label and self.association_inverse_label
            else {}
        )
        return LabelsOnDemand(
            resolve,
            lambda label, **fields: hook.create_label(from_type, to_type, label, **fields),
            pair=f"{from_type} -> {to_type}",
            log=self.log,
            inverse_labels=inverse,
            dry_run=self.is_dry_run,
        )
