"""``SyncAssociationsOperator``: give the desired state, send only the changes.

The Airflow side of ``sync.engine``: arguments, templating, the hook and the task instance's identity
(which names the run's lease, its own plan and its checkpoints under ``state_path``), and the record.
Everything about diffs, plans and the state lives in ``sync/``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc import assets, links
from airflow_hubspot_assoc.association_types import TypeResolver
from airflow_hubspot_assoc.batches import combined_status
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.operators.base import _object_type
from airflow_hubspot_assoc.operators.outputs import ledger_location, task_instance_key
from airflow_hubspot_assoc.record import MAX_ERRORS, MAX_SAMPLE, BatchRecord, utc_now_iso
from airflow_hubspot_assoc.record_parse import split_samples
from airflow_hubspot_assoc.record_sync import SyncCounts
from airflow_hubspot_assoc.report import _sample_pair
from airflow_hubspot_assoc.storage import describe_connection
from airflow_hubspot_assoc.sync.apply import LoadSetup
from airflow_hubspot_assoc.sync.engine import MODES, SyncEngine, SyncInput, SyncOutcome, SyncSettings
from airflow_hubspot_assoc.sync.ledger import SyncLedger
from airflow_hubspot_assoc.sync.state import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    SyncState,
    run_key,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SyncAssociationsOperator"]


class SyncAssociationsOperator(BatchCreateAssociationsOperator):
    """Make HubSpot's associations of the managed types match the input, sending only the changes.

    Takes the create operator's inputs (``pairs`` or ``pairs_path`` in every format, id fields,
    business keys, ``association_type_id``/``association_category`` or ``association_label``, per-row
    types, ``create_missing_labels``, ``batch_size``, ``max_concurrency``, ``max_burst``,
    ``max_failed_ratio``, ``progress_interval``). The input is the whole desired state of the types
    it names; other types are never touched. Every pair needs a type (no default association).

    :param state_path: where the sync keeps the snapshot of what it last applied, its plans and run
        history; local or object storage; one sync per ``state_path`` (templated)
    :param mode: ``upsert`` (default): create what is new, remove nothing; ``mirror``: also remove the
        managed types of pairs that left the input (``batch/labels/archive``)
    :param reconcile: also read HubSpot's current associations of the from-records in scope (batch read,
        1,000 ids a request) and diff against them, which repairs drift; without it, no reads
    :param max_removals: fail before any write when more pairs than this would be removed
    :param max_removal_ratio: fail before any write when removals exceed this share of the snapshot
        (default 0.1; None turns it off)
    :param all_types: allow mirror mode to manage the unlabeled type, whose removal HubSpot cascades
        to every label of the pair
    :param dry_run: compute the changes and write a plan under ``state_path`` (``planPath`` in the
        record); send nothing
    :param plan_path: apply exactly this plan (a dry run's ``planPath``) instead of reading the input;
        refused before any write when the state moved on since it was made (templated)
    :param lease_seconds: how long the lease on ``state_path`` holds; a run renews it between its
        creates and its removals, so it must outlast the longer phase (default 2 hours). A run that
        died keeps other runs out until it expires (a retry of the same task takes it over at once)
    :param lease_settle_seconds: how long a run waits after writing its lease on ``state_path``
        before reading it back to see whether another run's write replaced it (see ``sync.state``);
        longer than the store's write latency
    :param failed_pairs_path: where the run's refused and invalid pairs go, JSON Lines with an
        ``operation`` field (templated); default ``<state_path>/failed/<run>.jsonl``
    :param ledger_path: write the run's ledger here (templated; ``{run_id}``, ``{map_index}``,
        ``{dag_id}``, ``{task_id}`` filled in), so that ``RevertAssociationsOperator`` can undo the
        run: the planned pairs' types are read before the first write (``ledgerReads``) and each
        accepted create and removal recorded as the loads commit. A revert does not rewind the
        sync's snapshot (see the README)
    :return: the batch record with ``operation: "sync"``, ``created``, ``removed``, ``unchanged``,
        ``planned``, ``snapshotPairs``, ``reconciled``, ``planPath`` and ``generation`` (with a ledger,
        ``ledgerReads`` and ``ledgerPath``).
    """

    operation = "sync"

    template_fields: Sequence[str] = (
        *BatchCreateAssociationsOperator.template_fields,
        "state_path",
        "plan_path",
    )

    def __init__(
        self,
        *,
        state_path: str,
        mode: str = "upsert",
        reconcile: bool = False,
        max_removals: int | None = None,
        max_removal_ratio: float | None = 0.1,
        all_types: bool = False,
        plan_path: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        lease_settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        **kwargs: Any,
    ) -> None:
        applying = plan_path is not None and kwargs.get("pairs") is None and kwargs.get("pairs_path") is None
        # A plan carries its changes: the input may be left out (the shared checks want one of them).
        super().__init__(**({**kwargs, "pairs": []} if applying else kwargs))
        if applying:
            self.pairs = None
        if not state_path:
            raise ValueError(f"state_path must name where the sync keeps its state, got {state_path!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if max_removals is not None and (
            isinstance(max_removals, bool) or not isinstance(max_removals, int) or max_removals < 0
        ):
            raise ValueError(f"max_removals must be None or a non-negative integer, got {max_removals!r}")
        if max_removal_ratio is not None and (
            isinstance(max_removal_ratio, bool)
            or not isinstance(max_removal_ratio, int | float)
            or not 0.0 <= float(max_removal_ratio) <= 1.0
        ):
            raise ValueError(f"max_removal_ratio must be None or between 0 and 1, got {max_removal_ratio!r}")
        if self.checkpoint_path is not None:
            raise ValueError(
                f"checkpoint_path ({self.checkpoint_path!r}) is not used by a sync: its checkpoints live "
                "under state_path"
            )
        if plan_path is not None and self.is_dry_run:
            raise ValueError(f"plan_path ({plan_path!r}) applies a plan: it cannot be a dry run too")
        self.state_path = state_path
        self.mode = mode
        self.reconcile = bool(reconcile)
        self.max_removals = max_removals
        self.max_removal_ratio = None if max_removal_ratio is None else float(max_removal_ratio)
        self.all_types = bool(all_types)
        self.plan_path = plan_path
        if (
            isinstance(lease_seconds, bool)
            or not isinstance(lease_seconds, int | float)
            or lease_seconds <= 0
        ):
            raise ValueError(f"lease_seconds must be a positive number of seconds, got {lease_seconds!r}")
        self.lease_seconds = float(lease_seconds)
        self.lease_settle_seconds = lease_settle_seconds

    def execute(self, context: Context) -> dict[str, Any]:
        """Diff the input against the state (and HubSpot with ``reconcile``), send the changes, commit."""
        from_type = _object_type("from_object_type", self.from_object_type)
        to_type = _object_type("to_object_type", self.to_object_type)
        state_path = str(self.state_path or "").strip()
        if not state_path:
            raise HubSpotConfigError("state_path rendered empty: a sync needs somewhere to keep its state")
        if warning := describe_connection(state_path):
            self.log.warning("%s", warning)
        hook = HubSpotHook(
            self.hubspot_conn_id, max_concurrency=self.max_concurrency, max_burst=self.max_burst
        )
        links.persist(context, hook, from_type, to_type)
        ti = context.get("ti")
        owner = (
            run_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index if ti.map_index is not None else -1)
            if ti is not None
            else "no-task-instance"
        )
        state = SyncState(
            state_path,
            owner,
            log=self.log,  # type: ignore[arg-type]
            lease_seconds=self.lease_seconds,
            settle_seconds=self.lease_settle_seconds,
        )
        requested_at = utc_now_iso()
        source = None if self.plan_path else self._input(hook, from_type, to_type)
        if self.plan_path and (self.pairs is not None or self.pairs_path is not None):
            self.log.info("Applying the plan %s as it was made; the input is not read again.", self.plan_path)
        client = hook.client
        engine = SyncEngine(
            hook.sender(from_type, to_type),
            lambda ids: client.read_associations(from_type, to_type, ids),
            state,
            SyncSettings(
                mode=self.mode,
                reconcile=self.reconcile,
                max_removals=self.max_removals,
                max_removal_ratio=self.max_removal_ratio,
                all_types=self.all_types,
                dry_run=self.is_dry_run,
                max_failed_ratio=self.max_failed_ratio,
                load=LoadSetup(
                    batch_size=self.batch_size,
                    progress_interval=self.progress_interval,
                    checkpoint_interval=self.checkpoint_interval,
                ),
            ),
            workdir=Path(),
            log=self.log,  # type: ignore[arg-type]  # Airflow's structlog logger has the same methods
            conn_id=self.hubspot_conn_id,
            portal=hook.portal_id,
            stop=self._stop_event(),
            request_count=lambda: client.stats.requests,
            ledger=self._ledger(hook, ti),
        )
        failed_path = (
            str(self.failed_pairs_path) if self.failed_pairs_path else f"{state_path}/failed/{owner}.jsonl"
        )
        with tempfile.TemporaryDirectory(prefix="hubspot-sync-") as workdir:
            engine.workdir = Path(workdir)
            outcome = engine.run(source, plan_path=self.plan_path or None, failed_path=failed_path)
        record = self._record_of(outcome, from_type, to_type, requested_at, client.stats.snapshot())
        if engine.ledger is not None and outcome.ledger_reads is not None:
            record = dataclasses.replace(
                record, ledger_reads=outcome.ledger_reads, ledger_path=engine.ledger.location
            )
        keys = source.keys if source is not None else None
        if keys is not None and outcome.read_input:
            if not outcome.dry_run:
                keys.save_cache()
            record = dataclasses.replace(record, resolution=keys.summary())
        self.log.info("%s", record.summary())
        self._record = record
        assets.describe_outlet_events(self.outlets, context, record)
        self._enforce_policy(record)
        return record.to_xcom()

    def _ledger(self, hook: HubSpotHook, ti: Any) -> SyncLedger | None:
        """Where this run's ledger goes (``ledger_path`` with ``{run_id}`` etc.); None without one and
        in a dry run, which changes nothing."""
        location = None if self.is_dry_run else ledger_location(self.ledger_path, ti)
        if not location:
            return None
        if warning := describe_connection(location):
            self.log.warning("%s", warning)
        return SyncLedger(location, hook.portal_id, hook.api_version, task_instance_key(ti))

    def _input(self, hook: HubSpotHook, from_type: str, to_type: str) -> SyncInput:
        keys = self._key_resolver(hook, from_type, to_type)
        reader = self._reader(keys)
        resolve_label = self._label_resolver(hook, from_type, to_type)
        resolver = TypeResolver(self._default_types(resolve_label), self.association_category, resolve_label)
        self.log.info("Syncing %s -> %s associations from %s", from_type, to_type, reader.description)
        return SyncInput(reader, resolver, keys)

    def _record_of(
        self, outcome: SyncOutcome, from_type: str, to_type: str, requested_at: str, calls: dict[str, int]
    ) -> BatchRecord:
        plan, reports = outcome.plan, outcome.reports
        statuses: dict[str, int] = {}
        for report in reports:
            for name, n in report.statuses.items():
                statuses[name] = statuses.get(name, 0) + n
        errors = [error for report in reports for error in report.errors][:MAX_ERRORS]
        # Both samples share the record's bound (the revert's rule): half each when both have more.
        removed, sample = split_samples(
            [_sample_pair(entry) for report in reports[1:] for entry in report.sample],
            [_sample_pair(entry) for report in reports[:1] for entry in report.sample],
            MAX_SAMPLE,
        )
        types = tuple(dict.fromkeys(combo for report in reports for combo in report.types))[:20]
        counts = plan.input_counts
        return BatchRecord(
            status=combined_status(statuses) if statuses else "COMPLETE",
            from_type=from_type,
            to_type=to_type,
            conn_id=self.hubspot_conn_id,
            requested_at=requested_at,
            started_at=requested_at,
            completed_at=utc_now_iso(),
            association_types=types[0] if len(types) == 1 else (),
            types_used=types,
            dry_run=outcome.dry_run,
            total=counts.get("total", 0),
            created=outcome.created,
            removed=outcome.removed,
            failed=outcome.failed + counts.get("unresolved", 0),
            invalid=counts.get("invalid", 0),
            duplicates=counts.get("duplicates", 0),
            requests=calls["requests"],
            retries=calls["retries"],
            throttled=calls["throttled"],
            errors=tuple(errors),
            failed_pairs_path=outcome.failed_pairs_path,
            source=self._source(),
            sample=sample,
            removed_sample=removed,
            resumed=outcome.resumed,
            resumed_skipped=outcome.resumed_skipped,
            default_types=None,
            operation="sync",
            sync=SyncCounts(
                unchanged=plan.unchanged,
                planned_creates=len(plan.creates),
                planned_removals=len(plan.removals),
                snapshot_pairs=outcome.snapshot_pairs,
                reconciled=plan.reconciled,
                plan_path=plan.location,
                generation=outcome.generation,
            ),
        )

    def _source(self) -> dict[str, Any]:
        if self.pairs_path is not None:
            return {
                "kind": "path",
                "path": str(self.pairs_path),
                "fromIdField": self.from_id_field,
                "toIdField": self.to_id_field,
            }
        if self.pairs is not None:
            return {"kind": "xcom", "description": "pairs"}
        return {"kind": "plan", "path": str(self.plan_path)}
