"""``BatchCreateAssociationsOperator``: mirror relationships from XCom or files into HubSpot."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, XComArg

from airflow_hubspot_assoc import assets, lineage, links
from airflow_hubspot_assoc.api import BATCH_SIZE_MAX
from airflow_hubspot_assoc.association_types import (
    DEFAULT_ASSOCIATION,
    AssociationType,
    TypeResolver,
    Types,
    check_category,
    check_type_id,
)
from airflow_hubspot_assoc.checkpoint import CheckpointStore, checkpoint_key
from airflow_hubspot_assoc.client.headers import WINDOW_BURST_MAX
from airflow_hubspot_assoc.client.lookup import KeyLookup
from airflow_hubspot_assoc.exceptions import HubSpotConfigError, HubSpotError
from airflow_hubspot_assoc.failed_pairs import FailedPairsSink
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.keys.cache import KeyCache
from airflow_hubspot_assoc.keys.normalise import key_property
from airflow_hubspot_assoc.keys.resolver import KeyResolver
from airflow_hubspot_assoc.load import AssociationLoad, LoadSettings
from airflow_hubspot_assoc.operators.upstream import dag_of, upstream_xcoms
from airflow_hubspot_assoc.pairs import PairReader
from airflow_hubspot_assoc.record import BatchRecord
from airflow_hubspot_assoc.report import LoadReport
from airflow_hubspot_assoc.storage import describe_connection
from airflow_hubspot_assoc.ui import HUBSPOT_UI_COLOR

if TYPE_CHECKING:
    from airflow.sdk import Context

MAX_BATCH_SIZE = BATCH_SIZE_MAX
MAX_CONCURRENCY = 64


class BatchCreateAssociationsOperator(BaseOperator):
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
    :param from_id_property: None (default): the ``from`` field holds record ids; else the property
        whose values it holds: ``email`` (contacts), ``domain`` (companies, looked up by search), or a
        property with unique values such as ``external_id``; each distinct key is resolved once
        before any write, and a pair whose key matches no record (or several companies) fails with
        ``UNRESOLVED_KEY`` (``AMBIGUOUS_KEY``) (templated)
    :param to_id_property: the same for the ``to`` field (templated)
    :param key_cache_path: a directory (local or object storage) where resolved keys are kept per
        portal, object type and property, read before resolving and replaced after the load, so that
        the next run only resolves keys it has not seen (templated); not written by dry runs
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
    :param dry_run: read, validate and resolve labels; send nothing
    :param progress_interval: seconds between progress lines in the log
    :param hubspot_conn_id: the HubSpot connection (templated)
    :return: the batch record (see the README): status, counts, bounded errors and sample.
    """

    template_fields: Sequence[str] = (
        "from_object_type",
        "to_object_type",
        "pairs",
        "pairs_path",
        "from_id_property",
        "to_id_property",
        "key_cache_path",
        "association_type_id",
        "association_label",
        "failed_pairs_path",
        "checkpoint_path",
        "hubspot_conn_id",
    )
    template_fields_renderers = {"pairs": "json"}
    ui_color = HUBSPOT_UI_COLOR
    operator_extra_links = (links.HubSpotFromObjectsLink(), links.HubSpotToObjectsLink())

    def __init__(
        self,
        *,
        from_object_type: str,
        to_object_type: str,
        pairs: Any = None,
        pairs_path: str | XComArg | None = None,
        from_id_field: str = "from_id",
        to_id_field: str = "to_id",
        from_id_property: str | None = None,
        to_id_property: str | None = None,
        key_cache_path: str | None = None,
        association_type_id: int | str | None = None,
        association_category: str = "HUBSPOT_DEFINED",
        association_label: str | None = None,
        batch_size: int = 100,
        max_concurrency: int = 8,
        max_burst: int | None = None,
        max_failed_ratio: float = 0.0,
        failed_pairs_path: str | None = None,
        checkpoint_path: str | None = None,
        checkpoint_interval: float = 0.0,
        dry_run: bool = False,
        progress_interval: float = 5.0,
        hubspot_conn_id: str = HubSpotHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (pairs is None) == (pairs_path is None):
            raise ValueError(
                "Pass exactly one of pairs and pairs_path "
                f"(got pairs={'set' if pairs is not None else None}, pairs_path={pairs_path!r})"
            )
        if association_type_id is not None and association_label is not None:
            raise ValueError(
                f"Pass association_type_id ({association_type_id!r}) or association_label "
                f"({association_label!r}), not both"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or not 1 <= batch_size <= MAX_BATCH_SIZE
        ):
            raise ValueError(
                f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE:,}, got {batch_size!r}"
            )
        if (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or not (1 <= max_concurrency <= MAX_CONCURRENCY)
        ):
            raise ValueError(
                f"max_concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {max_concurrency!r}"
            )
        if max_burst is not None and (
            isinstance(max_burst, bool)
            or not isinstance(max_burst, int)
            or not 1 <= max_burst <= WINDOW_BURST_MAX
        ):
            raise ValueError(
                f"max_burst must be None or an integer from 1 to {WINDOW_BURST_MAX}, got {max_burst!r}"
            )
        if not 0.0 <= float(max_failed_ratio) <= 1.0:
            raise ValueError(f"max_failed_ratio must be between 0 and 1, got {max_failed_ratio!r}")
        if not from_id_field or not to_id_field or from_id_field == to_id_field:
            raise ValueError(
                f"from_id_field and to_id_field must differ, got {from_id_field!r} and {to_id_field!r}"
            )
        try:
            self.association_category = check_category(association_category)
        except HubSpotConfigError as err:
            raise ValueError(str(err)) from None
        self.from_object_type = from_object_type
        self.to_object_type = to_object_type
        self.pairs = pairs
        self.pairs_path = pairs_path
        self.from_id_field = from_id_field
        self.to_id_field = to_id_field
        self.from_id_property = from_id_property
        self.to_id_property = to_id_property
        self.key_cache_path = key_cache_path
        self.association_type_id = association_type_id
        self.association_label = association_label
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.max_burst = max_burst
        self.max_failed_ratio = float(max_failed_ratio)
        self.failed_pairs_path = failed_pairs_path
        self.checkpoint_path = checkpoint_path
        self.checkpoint_interval = checkpoint_interval
        # Not ``self.dry_run``: BaseOperator already has a ``dry_run()`` method.
        self.is_dry_run = dry_run
        self.progress_interval = progress_interval
        self.hubspot_conn_id = hubspot_conn_id
        self._stop: threading.Event | None = None
        # What execute learnt, for the OpenLineage facets on completion.
        self._files_read: tuple[str, ...] = ()
        self._record: BatchRecord | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate the whole input, send it, and return the batch record."""
        from_type = _object_type("from_object_type", self.from_object_type)
        to_type = _object_type("to_object_type", self.to_object_type)
        hook = HubSpotHook(
            self.hubspot_conn_id, max_concurrency=self.max_concurrency, max_burst=self.max_burst
        )
        keys = self._key_resolver(hook, from_type, to_type)
        reader = self._reader(keys)
        links.persist(context, hook, from_type, to_type)
        default_types = self._default_types(hook, from_type, to_type)
        failed_path = self._failed_pairs_path(context)
        checkpoint = None if self.is_dry_run else self._checkpoint_store(context, failed_path)
        for path in (self.pairs_path, failed_path, checkpoint and checkpoint.location):
            if path and (warning := describe_connection(str(path))):
                self.log.warning("%s", warning)
        report = LoadReport(
            from_type=from_type,
            to_type=to_type,
            conn_id=self.hubspot_conn_id,
            source=self._source_reference(reader),
            dry_run=self.is_dry_run,
            failed_pairs_path=failed_path,
            default_types=default_types,
            default_category=self.association_category,
        )
        load = AssociationLoad(
            hook.sender(from_type, to_type),
            from_type,
            to_type,
            reader,
            TypeResolver(
                default_types,
                self.association_category,
                lambda name: hook.resolve_label(from_type, to_type, name),
            ),
            report,
            FailedPairsSink(None if self.is_dry_run else failed_path),
            LoadSettings(
                batch_size=self.batch_size,
                max_failed_ratio=self.max_failed_ratio,
                dry_run=self.is_dry_run,
                progress_interval=self.progress_interval,
                checkpoint_interval=self.checkpoint_interval,
            ),
            log=self.log,  # type: ignore[arg-type]  # Airflow's structlog logger has the same methods
            stop=self._stop_event(),
            checkpoint=checkpoint,
            keys=keys,
        )
        self.log.info("Loading %s -> %s associations from %s", from_type, to_type, reader.description)
        load.validate()
        load.fingerprint = {
            "source": reader.description,
            "rows": report.total,
            "from": from_type,
            "to": to_type,
        }
        skipped = load.resume()
        load.send()
        if keys is not None and not self.is_dry_run:
            keys.save_cache()
        if checkpoint is not None:
            checkpoint.clear()
        record = report.to_record(resumed_skipped=skipped)
        if keys is not None:
            record = dataclasses.replace(record, resolution=keys.summary())
        self.log.info("%s", record.summary())
        self._files_read = _files_of(reader)
        self._record = record
        assets.describe_outlet_events(self.outlets, context, record)
        self._enforce_policy(record)
        return record.to_xcom()

    def on_kill(self) -> None:
        """Stop sending new batches; the load logs how far it got once the requests in flight return."""
        self._stop_event().set()
        self.log.warning("Kill requested: no new batches will be sent.")

    def get_openlineage_facets_on_start(self) -> Any:
        """OpenLineage: the input files or upstream task, and the pair's associations (see ``lineage``)."""
        return lineage.facets_on_start(self._lineage)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage after the load: the files read and how many associations were created."""
        return lineage.facets_on_complete(self._lineage, self._files_read, self._record)

    # -- helpers ----------------------------------------------------------------------------
    # Made on first use, not in __init__: Airflow deep-copies operators (``DAG.partial_subset``, and
    # 3.0's ``dag.test()``) and a lock cannot be copied. The guard is a class attribute: never copied.
    _stop_guard = threading.Lock()

    def _stop_event(self) -> threading.Event:
        with self._stop_guard:
            if self._stop is None:
                self._stop = threading.Event()
            return self._stop

    def _key_resolver(self, hook: HubSpotHook, from_type: str, to_type: str) -> KeyResolver | None:
        """The resolver of business keys, its properties checked (before reading any pair); None
        when both sides hold record ids."""
        from_key = key_property("from_id_property", "from", from_type, self.from_id_property)
        to_key = key_property("to_id_property", "to", to_type, self.to_id_property)
        if from_key is None and to_key is None:
            return None
        log: Any = self.log  # Airflow's structlog logger has the logging.Logger methods used
        # Without a portal id on the connection, its id names the account: keys never mix portals
        # as long as one connection points at one portal.
        portal = hook.portal_id or f"conn-{self.hubspot_conn_id}"
        cache = KeyCache(str(self.key_cache_path), portal, log=log) if self.key_cache_path else None
        resolver = KeyResolver(KeyLookup(hook.client), from_key, to_key, log=log, cache=cache)
        resolver.check_properties()
        return resolver

    def _reader(self, keys: KeyResolver | None = None) -> PairReader:
        fields = {"from_id_field": self.from_id_field, "to_id_field": self.to_id_field}
        sides = keys.key_sides if keys is not None else (False, False)
        if self.pairs_path is not None and self.pairs is None:
            return PairReader.from_path(str(self.pairs_path), **fields, keys=sides)
        if self.pairs is not None and self.pairs_path is None:
            return PairReader.from_pairs(self.pairs, **fields, keys=sides)
        raise HubSpotConfigError("Exactly one of pairs and pairs_path must be set after rendering templates")

    def _default_types(self, hook: HubSpotHook, from_type: str, to_type: str) -> Types:
        if self.association_label:
            category, type_id = hook.resolve_label(from_type, to_type, str(self.association_label))
            return (AssociationType(category, type_id),)
        if self.association_type_id not in (None, ""):
            return (AssociationType(self.association_category, check_type_id(self.association_type_id)),)
        return DEFAULT_ASSOCIATION

    def _failed_pairs_path(self, context: Context) -> str | None:
        if not self.failed_pairs_path:
            return None
        path = str(self.failed_pairs_path)
        if "{" not in path:
            return path
        source = str(self.pairs_path or "pairs").rstrip("/")
        name = source.rsplit("/", 1)[-1]
        for suffix in (".gz", ".csv", ".jsonl", ".ndjson", ".json", ".parquet"):
            name = name.removesuffix(suffix)
        ti = context.get("ti")
        map_index = getattr(ti, "map_index", -1) if ti is not None else -1
        return path.format(
            map_index=map_index, input_name=name, input_dir=source.rsplit("/", 1)[0] if "/" in source else "."
        )

    def _checkpoint_store(self, context: Context, failed_path: str | None) -> CheckpointStore | None:
        base = self.checkpoint_path or (
            f"{failed_path.rsplit('/', 1)[0] if '/' in failed_path else '.'}/_checkpoints"
            if failed_path
            else None
        )
        ti = context.get("ti")
        if not base or ti is None:
            self.log.info(
                "No checkpoints: set checkpoint_path (or failed_pairs_path) to resume after a crash."
            )
            return None
        key = checkpoint_key(
            ti.dag_id, ti.run_id, ti.task_id, ti.map_index if ti.map_index is not None else -1
        )
        return CheckpointStore(
            str(base),
            key,
            owns_base=not self.checkpoint_path,
            log=self.log,  # type: ignore[arg-type]  # Airflow's structlog logger has the same methods
        )

    def _source_reference(self, reader: PairReader) -> dict[str, Any]:
        if self.pairs_path is not None:
            return {
                "kind": "path",
                "path": str(self.pairs_path),
                "fromIdField": self.from_id_field,
                "toIdField": self.to_id_field,
            }
        return {"kind": "xcom", "description": reader.description}

    def _enforce_policy(self, record: BatchRecord) -> None:
        if record.status == "CANCELED":
            reasons = "; ".join(str(e.get("message")) for e in record.errors[:5]) or "no reason given"
            raise HubSpotError(f"HubSpot canceled at least one batch: {reasons}. {record.summary()}")
        total = record.total
        bad = record.num_errors
        if total and bad / total > self.max_failed_ratio:
            where = f" Failed pairs: {record.failed_pairs_path}." if record.failed_pairs_path else ""
            raise HubSpotError(
                f"{bad:,} of {total:,} pairs failed or were invalid, over max_failed_ratio="
                f"{self.max_failed_ratio}.{where} {record.summary()}"
            )

    def _lineage(self) -> lineage.LoadLineage:
        """The load as OpenLineage sees it: plain values (the connection is read through the hook)."""
        hook = HubSpotHook(self.hubspot_conn_id)
        portal_id = hook.portal_id  # reads the connection; the hook then knows its base URL
        pairs_path = self.pairs_path
        dag = dag_of(self)
        return lineage.LoadLineage(
            from_type=str(self.from_object_type),
            to_type=str(self.to_object_type),
            pairs_path=str(pairs_path)
            if pairs_path is not None and not isinstance(pairs_path, XComArg)
            else None,
            xcom_inputs=tuple(upstream_xcoms(self)) if pairs_path is None else (),
            dag_id=getattr(dag, "dag_id", None) or "unknown",
            portal_id=portal_id,
            base_url=hook.base_url,
        )


def _object_type(parameter: str, value: Any) -> str:
    """Check an object type before it reaches a URL; the error names the parameter."""
    from airflow_hubspot_assoc.api import validate_object_type

    try:
        return validate_object_type(value)
    except HubSpotConfigError as err:
        raise HubSpotConfigError(f"{parameter}: {err}") from err


def _files_of(reader: PairReader) -> tuple[str, ...]:
    try:
        return tuple(reader.files)
    except Exception:  # listing again is best effort: lineage must not fail the task
        return ()
