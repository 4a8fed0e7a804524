"""What the batch operators share: their inputs, their checks, and one load from input to record.

Why: creating and archiving associations take the same inputs (pairs or files, id fields, types and
labels, batching, failure tolerance, checkpoints, dry runs) and account for every pair the same way;
only what a batch does differs, which the load's ``operation`` says. Subclasses add their own
arguments through ``_load_settings`` and ``_label_resolver``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
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
from airflow_hubspot_assoc.client.headers import WINDOW_BURST_MAX
from airflow_hubspot_assoc.exceptions import HubSpotConfigError, HubSpotError
from airflow_hubspot_assoc.failed_pairs import FailedPairsSink
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.load import AssociationLoad, LoadSettings
from airflow_hubspot_assoc.operators.outputs import (
    checkpoint_store,
    failed_pairs_path,
    key_resolver,
    ledger_input,
    ledger_writer,
    resolved_pairs,
)
from airflow_hubspot_assoc.operators.upstream import dag_of, upstream_xcoms
from airflow_hubspot_assoc.pairs import PairReader
from airflow_hubspot_assoc.record import BatchRecord
from airflow_hubspot_assoc.report import LoadReport
from airflow_hubspot_assoc.storage import describe_connection
from airflow_hubspot_assoc.ui import HUBSPOT_UI_COLOR

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_hubspot_assoc.keys.resolver import KeyResolver

MAX_BATCH_SIZE = BATCH_SIZE_MAX
MAX_CONCURRENCY = 64


class BatchAssociationsOperatorBase(BaseOperator):
    """The shared surface of the batch operators (see ``BatchCreateAssociationsOperator`` for the
    parameters). Not for use on its own."""

    #: What the load's batches do (``load.OPERATIONS``).
    operation = "create"

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
        "ledger_path",
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
        ledger_path: str | None = None,
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
        self.ledger_path = ledger_path
        # Not ``self.dry_run``: BaseOperator already has a ``dry_run()`` method.
        self.is_dry_run = dry_run
        self.progress_interval = progress_interval
        self.hubspot_conn_id = hubspot_conn_id
        self._stop: threading.Event | None = None
        # What execute learnt, for the OpenLineage facets on completion.
        self._files_read: tuple[str, ...] = ()
        self._record: BatchRecord | None = None

    def _key_resolver(self, hook: HubSpotHook, from_type: str, to_type: str) -> KeyResolver | None:
        """The business keys' resolver of this operator's sides (None when both hold record ids)."""
        return key_resolver(
            hook,
            self.hubspot_conn_id,
            (from_type, self.from_id_property),
            (to_type, self.to_id_property),
            self.key_cache_path,
            log=self.log,
        )

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
        resolve_label = self._label_resolver(hook, from_type, to_type)
        default_types = self._default_types(resolve_label)
        ti = context.get("ti")
        failed_path = failed_pairs_path(self.failed_pairs_path, self.pairs_path, ti)
        checkpoint = (
            None if self.is_dry_run else checkpoint_store(self.checkpoint_path, failed_path, ti, log=self.log)  # type: ignore[arg-type]
        )
        ledger_at, named = ledger_input(self.ledger_path, self.is_dry_run, ti)
        for path in (self.pairs_path, failed_path, checkpoint and checkpoint.location, ledger_at):
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
            operation=self.operation,
        )
        load = AssociationLoad(
            hook.sender(from_type, to_type),
            from_type,
            to_type,
            reader,
            TypeResolver(
                default_types,
                self.association_category,
                resolve_label,
            ),
            report,
            FailedPairsSink(None if self.is_dry_run else failed_path),
            LoadSettings(
                batch_size=self.batch_size,
                max_failed_ratio=self.max_failed_ratio,
                dry_run=self.is_dry_run,
                progress_interval=self.progress_interval,
                checkpoint_interval=self.checkpoint_interval,
                operation=self.operation,
                **self._load_settings(),
            ),
            log=self.log,  # type: ignore[arg-type]  # Airflow's structlog logger has the same methods
            stop=self._stop_event(),
            checkpoint=checkpoint,
            keys=keys,
            collect=named.collect if named is not None else None,
        )
        self.log.info(
            "%s %s -> %s associations from %s",
            "Archiving" if self.operation == "archive" else "Loading",
            from_type,
            to_type,
            reader.description,
        )
        load.validate()
        load.fingerprint = {
            "source": reader.description,
            "rows": report.total,
            "from": from_type,
            "to": to_type,
            # An archive's checkpoint must never resume a create of the same input, nor the reverse.
            **({"operation": self.operation} if self.operation != "create" else {}),
        }
        if ledger_at and named is not None:  # keys resolved: read (or reuse) the before state, then write
            named = resolved_pairs(named, keys)
            load.ledger = ledger_writer(ledger_at, hook, load, self.operation, named, ti=ti, log=self.log)
        skipped = load.resume()
        load.send()
        if keys is not None and not self.is_dry_run:
            keys.save_cache(beside=failed_path)
        if checkpoint is not None:
            checkpoint.clear()
        record = report.to_record(resumed_skipped=skipped)
        if keys is not None:
            record = dataclasses.replace(record, resolution=keys.summary())
        if load.ledger is not None:
            record = dataclasses.replace(record, ledger_reads=load.ledger.reads, ledger_path=ledger_at)
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

    def _reader(self, keys: KeyResolver | None) -> PairReader:
        fields = {"from_id_field": self.from_id_field, "to_id_field": self.to_id_field}
        sides = keys.key_sides if keys is not None else (False, False)
        if self.pairs_path is not None and self.pairs is None:
            return PairReader.from_path(str(self.pairs_path), **fields, keys=sides)
        if self.pairs is not None and self.pairs_path is None:
            return PairReader.from_pairs(self.pairs, **fields, keys=sides)
        raise HubSpotConfigError("Exactly one of pairs and pairs_path must be set after rendering templates")

    def _load_settings(self) -> dict[str, Any]:
        """The subclass's own ``LoadSettings`` fields (guards, archive scope)."""
        return {}

    def _label_resolver(
        self, hook: HubSpotHook, from_type: str, to_type: str
    ) -> Callable[[str], tuple[str, int]]:
        """Label name -> ``(category, type id)``, for the operator's label and the rows' labels."""
        return lambda name: hook.resolve_label(from_type, to_type, name)

    def _default_types(self, resolve_label: Callable[[str], tuple[str, int]]) -> Types:
        if self.association_label:
            category, type_id = resolve_label(str(self.association_label))
            return (AssociationType(category, type_id),)
        if self.association_type_id not in (None, ""):
            return (AssociationType(self.association_category, check_type_id(self.association_type_id)),)
        return DEFAULT_ASSOCIATION

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
