"""``RevertAssociationsOperator``: undo what one run of the create or archive operator changed, from its
ledger (see :mod:`airflow_hubspot_assoc.ledger`).

Why it reads HubSpot before writing: the inverse is computed against what the touched pairs show
*now* (:func:`ledger.inverse`): it removes only types the run added that are still there and restores
only types it removed that are missing. A second revert therefore writes nothing, and a retry after a
crash picks up where the first try stopped. The read is saved in the revert's own ledger when
``ledger_path`` is given, so the revert can be reverted too.

It runs the inverse through the same load as the other operators, in two phases: removals first
(``batch/labels/archive``; ``batch/archive`` for pairs that had nothing before), then restores
(``batch/create`` with the removed types). Removals go first so that a cascade cannot take a label
just restored. Each phase has its own checkpoint and failed-pairs file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType, TypeResolver
from airflow_hubspot_assoc.exceptions import HubSpotConfigError, HubSpotError
from airflow_hubspot_assoc.failed_pairs import FailedPairsSink
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.ledger import Ledger, LedgerWriter, inverse
from airflow_hubspot_assoc.ledger_reads import NamedPairs, open_ledger, read_before, unlabeled_type
from airflow_hubspot_assoc.load import AssociationLoad, LoadSettings
from airflow_hubspot_assoc.operators.outputs import checkpoint_store, ledger_location, task_instance_key
from airflow_hubspot_assoc.pairs import Pair
from airflow_hubspot_assoc.record import MAX_SAMPLE, BatchRecord
from airflow_hubspot_assoc.record_parse import split_samples
from airflow_hubspot_assoc.report import LoadReport
from airflow_hubspot_assoc.ui import HUBSPOT_UI_COLOR

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["RevertAssociationsOperator"]

Row = tuple[str, str, tuple[AssociationType, ...]]


class RevertAssociationsOperator(BaseOperator):
    """Apply the inverse of a ledger: remove what a run added, restore what it removed.

    :param ledger: the ledger folder to revert (templated; ``{run_id}``, ``{map_index}`` and ``{dag_id}``
        are filled in from this task, so the load's own ``ledger_path`` works in the same DAG run; or
        pull the load's record ``ledgerPath`` through Jinja)
    :param ledger_path: where this revert writes its own ledger (optional; it can then be reverted)
    :param from_object_type: / to_object_type: optional; when given they must match the ledger's
    :param failed_pairs_path: failed pairs of each phase; ``{phase}`` becomes ``remove`` / ``restore``
        (without it, ``.remove`` / ``.restore`` is added to the name)
    :return: the batch record with ``operation: "revert"``, ``removed`` and ``restored`` pair counts
        (in a dry run, the pairs it would remove from and restore), ``failed`` and ``ledgerReads``;
        ``sample`` holds restored pairs with the types restored and ``removedSample`` pairs with the
        types removed (none: no association left), at most 100 together, for the sensor.
    """

    template_fields: Sequence[str] = ("ledger", "ledger_path", "failed_pairs_path", "checkpoint_path")
    ui_color = HUBSPOT_UI_COLOR

    def __init__(
        self,
        *,
        ledger: str,
        ledger_path: str | None = None,
        from_object_type: str | None = None,
        to_object_type: str | None = None,
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
        if not ledger:
            raise ValueError("ledger must name the ledger folder to revert")
        if not 0.0 <= float(max_failed_ratio) <= 1.0:
            raise ValueError(f"max_failed_ratio must be between 0 and 1, got {max_failed_ratio!r}")
        self.ledger = ledger
        self.ledger_path = ledger_path
        self.from_object_type = from_object_type
        self.to_object_type = to_object_type
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.max_burst = max_burst
        self.max_failed_ratio = float(max_failed_ratio)
        self.failed_pairs_path = failed_pairs_path
        self.checkpoint_path = checkpoint_path
        self.checkpoint_interval = checkpoint_interval
        self.is_dry_run = dry_run
        self.progress_interval = progress_interval
        self.hubspot_conn_id = hubspot_conn_id
        self._stop: threading.Event | None = None
        self._source = str(ledger)

    _stop_guard = threading.Lock()

    def _stop_event(self) -> threading.Event:
        with self._stop_guard:
            if self._stop is None:
                self._stop = threading.Event()
            return self._stop

    def on_kill(self) -> None:
        self._stop_event().set()

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context.get("ti")
        source = ledger_location(str(self.ledger), ti) or str(self.ledger)
        self._source = source
        meta = Ledger(source).meta()
        if meta is None:
            raise HubSpotConfigError(f"No ledger at {source} (its ledger.json is missing)")
        from_type, to_type = str(meta["fromType"]), str(meta["toType"])
        for name, given, recorded in (
            ("from_object_type", self.from_object_type, from_type),
            ("to_object_type", self.to_object_type, to_type),
        ):
            if given and given != recorded:
                raise HubSpotConfigError(f"{name}={given!r}, but the ledger at {source} is for {recorded!r}")
        hook = HubSpotHook(
            self.hubspot_conn_id, max_concurrency=self.max_concurrency, max_burst=self.max_burst
        )
        portal = hook.portal_id
        if (meta.get("portalId") or portal) and str(meta.get("portalId")) != str(portal):
            raise HubSpotConfigError(
                f"The ledger at {source} was written for portal {meta.get('portalId')}, but connection "
                f"{self.hubspot_conn_id!r} is portal {portal}; nothing was sent"
            )
        entries = list(Ledger(source).entries())
        sender = hook.sender(from_type, to_type)
        unlabeled = unlabeled_type(sender.association_types())
        named = NamedPairs()
        for entry in entries:
            named.add(entry.from_id, entry.to_id)
        digest = hashlib.sha256(repr(sorted(entries)).encode()).hexdigest()[:16]
        fingerprint = {
            "ledger": source,
            "entries": digest,
            "from": from_type,
            "to": to_type,
            "taskInstance": task_instance_key(ti),
        }
        own = None if self.is_dry_run else ledger_location(self.ledger_path, ti)
        writer: LedgerWriter | None = None
        if own:
            own_meta = {
                "fromType": from_type,
                "toType": to_type,
                "portalId": portal,
                "apiVersion": hook.api_version,
                "operation": "revert",
                "fingerprint": fingerprint,
            }
            writer = open_ledger(own, own_meta, named, sender.read_associations, unlabeled, log=self.log)  # type: ignore[arg-type]
            current, reads = writer.before, writer.reads
        else:
            current, reads = read_before(sender.read_associations, named)
        removals, restores = inverse(entries, current, unlabeled)
        self.log.info(
            "Reverting %s changed pairs of %s: %s to remove from, %s to restore.",
            f"{len(entries):,}",
            source,
            f"{len(removals):,}",
            f"{len(restores):,}",
        )
        removed = self._phase(
            "remove", "archive", removals, hook, from_type, to_type, fingerprint, writer, ti
        )
        restored = self._phase(
            "restore", "create", restores, hook, from_type, to_type, fingerprint, writer, ti
        )
        if self.is_dry_run:  # nothing was sent: the record says what would be removed and restored
            removed_sample, sample = split_samples(_planned(removals), _planned(restores), MAX_SAMPLE)
            removed_count, restored_count = len(removals), len(restores)
        else:
            removed_sample, sample = split_samples(removed.sample, restored.sample, MAX_SAMPLE)
            removed_count, restored_count = removed.written, restored.created
        record = dataclasses.replace(
            restored,
            operation="revert",
            total=removed.total + restored.total,
            created=0,
            archived=None,
            removed=removed_count,
            restored=restored_count,
            failed=removed.failed + restored.failed,
            errors=(removed.errors + restored.errors)[:50],
            sample=sample,
            removed_sample=removed_sample,
            types_used=(),
            association_types=(),
            source={"kind": "ledger", "path": source},
            ledger_reads=reads,
            ledger_path=own,
            started_at=removed.started_at or restored.started_at,
            resumed=removed.resumed or restored.resumed,
            resumed_skipped=removed.resumed_skipped + restored.resumed_skipped,
        )
        self.log.info("%s", record.summary())
        if record.total and record.failed / record.total > self.max_failed_ratio:
            raise HubSpotError(
                f"{record.failed:,} of {record.total:,} pairs failed to revert, over max_failed_ratio="
                f"{self.max_failed_ratio}. {record.summary()}"
            )
        return record.to_xcom()

    def _phase(
        self,
        phase: str,
        operation: str,
        rows: list[Row],
        hook: HubSpotHook,
        from_type: str,
        to_type: str,
        fingerprint: dict[str, Any],
        writer: LedgerWriter | None,
        ti: Any,
    ) -> BatchRecord:
        """One load of the inverse: ``archive`` for removals, ``create`` for restores."""
        failed_path = _phase_path(self.failed_pairs_path, phase)
        phase_ti = (
            None
            if ti is None
            else SimpleNamespace(
                dag_id=ti.dag_id, run_id=ti.run_id, task_id=f"{ti.task_id}.{phase}", map_index=ti.map_index
            )
        )
        checkpoint = (
            None
            if self.is_dry_run
            else checkpoint_store(self.checkpoint_path, failed_path, phase_ti, log=self.log)  # type: ignore[arg-type]
        )
        report = LoadReport(
            from_type=from_type,
            to_type=to_type,
            conn_id=self.hubspot_conn_id,
            source={"kind": "ledger", "path": self._source},
            dry_run=self.is_dry_run,
            failed_pairs_path=failed_path,
            operation=operation,
        )
        pairs = [Pair(f, t, n, self._source, types=types) for n, (f, t, types) in enumerate(rows, 1)]
        load = AssociationLoad(
            hook.sender(from_type, to_type),
            from_type,
            to_type,
            pairs,
            TypeResolver((), "HUBSPOT_DEFINED", lambda name: hook.resolve_label(from_type, to_type, name)),
            report,
            FailedPairsSink(None if self.is_dry_run else failed_path),
            LoadSettings(
                batch_size=self.batch_size,
                max_failed_ratio=1.0,  # judged on the whole revert
                dry_run=self.is_dry_run,
                progress_interval=self.progress_interval,
                checkpoint_interval=self.checkpoint_interval,
                operation=operation,
                all_types=True,  # only pairs that had nothing before lose everything (see ledger.inverse)
            ),
            log=self.log,  # type: ignore[arg-type]
            stop=self._stop_event(),
            checkpoint=checkpoint,
        )
        load.validate()
        load.fingerprint = {**fingerprint, "phase": phase, "rows": len(pairs)}
        load.ledger = writer
        skipped = load.resume()
        load.send()
        if checkpoint is not None:
            checkpoint.clear()
        return report.to_record(resumed_skipped=skipped)


def _planned(rows: list[Row]) -> tuple[AssociationPair, ...]:
    """The first ``MAX_SAMPLE`` rows of a phase as sample pairs (a dry run's sample)."""
    return tuple(AssociationPair(f, t, frozenset(types)) for f, t, types in rows[:MAX_SAMPLE])


def _phase_path(template: str | None, phase: str) -> str | None:
    """The failed-pairs path of one phase."""
    if not template:
        return None
    path = str(template)
    if "{phase}" in path:
        return path.replace("{phase}", phase)
    head, dot, tail = path.rpartition(".")
    return f"{head}.{phase}.{tail}" if dot and "/" not in tail else f"{path}.{phase}"
