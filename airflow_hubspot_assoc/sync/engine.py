"""One sync run, without Airflow: desired state -> diff -> guards -> creates and removals -> snapshot.

The order is what makes a sync safe to run every night:

1. Everything that can refuse the run happens before the first write: the input is validated and its
   labels and business keys resolved, the diff is computed (against the snapshot, or against what
   HubSpot holds with ``reconcile``), the removal guards and the archive scope are checked, and the
   lease on ``state_path`` is taken.
2. The diff is saved as the run's own plan before the first write. A retry of the task (a crash, a
   kill) finds it and applies the same changes, its loads resuming from their checkpoints, instead of
   diffing again against a HubSpot that already shows part of the run: so the retry ends in the same
   snapshot as an uninterrupted run.
3. The snapshot advances only by what HubSpot accepted: ``old + accepted creates - accepted removals
   - forgotten`` (pairs a reconcile found neither desired nor in HubSpot). A refused create is not in
   it (the next run tries again); a refused removal stays in it. The new snapshot is committed under a
   new name and the pointer replaced (see ``state``), only if the state is still at the generation
   the run started from.
"""

from __future__ import annotations

import logging
import pathlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from airflow_hubspot_assoc.association_types import TypeResolver
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.failed_pairs import FailedPairsSink
from airflow_hubspot_assoc.guards import check_type_ids, known_association_types, unlabeled_type_ids
from airflow_hubspot_assoc.sync.apply import LoadSetup, TripleLoad, combine_failures
from airflow_hubspot_assoc.sync.desired import TypeTable, check_input, spool_desired
from airflow_hubspot_assoc.sync.plan import (
    Plan,
    check_current,
    dry_run_location,
    prune_plans,
    read_plan,
    write_plan,
)
from airflow_hubspot_assoc.sync.reconcile import ReadAssociations, merged_ids, read_current
from airflow_hubspot_assoc.sync.snapshot import SnapshotMeta, read_snapshot, write_snapshot
from airflow_hubspot_assoc.sync.state import snapshot_name
from airflow_hubspot_assoc.sync.triples import TripleSet, TripleSpool, diff, difference, intersection, union

if TYPE_CHECKING:
    from airflow_hubspot_assoc.client.sender import AssociationSender
    from airflow_hubspot_assoc.keys.resolver import KeyResolver
    from airflow_hubspot_assoc.pairs import InvalidRow, Pair
    from airflow_hubspot_assoc.report import LoadReport
    from airflow_hubspot_assoc.sync.ledger import SyncLedger
    from airflow_hubspot_assoc.sync.state import Pointer, SyncState

MODES = ("upsert", "mirror")


@dataclass(frozen=True)
class SyncSettings:
    """What a run may do; see ``SyncAssociationsOperator`` for each."""

    mode: str = "upsert"
    reconcile: bool = False
    max_removals: int | None = None
    max_removal_ratio: float | None = 0.1
    all_types: bool = False
    dry_run: bool = False
    max_failed_ratio: float = 0.0
    load: LoadSetup = field(default_factory=LoadSetup)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")


@dataclass
class SyncInput:
    """The desired state: the input rows and how to give them types and record ids."""

    rows: Iterable[Pair | InvalidRow]
    resolver: TypeResolver
    keys: KeyResolver | None = None


@dataclass
class SyncOutcome:
    """What a run did, for the record."""

    plan: Plan
    generation: int
    dry_run: bool = False
    created: int = 0
    removed: int = 0
    failed: int = 0
    snapshot_pairs: int = 0
    failed_pairs_path: str | None = None
    reports: tuple[LoadReport, ...] = ()
    resumed: bool = False
    resumed_skipped: int = 0
    #: Whether this try read the input (not when it applied a plan, its own or a dry run's).
    read_input: bool = True
    #: With a ledger: the before read's batch-read requests (of the try that read it).
    ledger_reads: int | None = None


class SyncEngine:
    """Runs one sync of ``sender``'s object pair on one ``state_path``."""

    def __init__(
        self,
        sender: AssociationSender,
        read: ReadAssociations,
        state: SyncState,
        settings: SyncSettings,
        *,
        workdir: pathlib.Path,
        log: logging.Logger,
        conn_id: str,
        portal: str | None = None,
        stop: threading.Event | None = None,
        request_count: Callable[[], int] = lambda: 0,
        ledger: SyncLedger | None = None,
    ) -> None:
        self.sender = sender
        self.read = read
        self.state = state
        self.settings = settings
        self.workdir = workdir
        self.log = log
        self.conn_id = conn_id
        self.portal = portal
        self.stop = stop or threading.Event()
        self.request_count = request_count
        self.ledger = ledger
        self.from_type, self.to_type = sender.from_type, sender.to_type

    def run(self, source: SyncInput | None, *, plan_path: str | None, failed_path: str | None) -> SyncOutcome:
        """Plan (dry run) or apply; a dry run takes no lease and writes only its plan."""
        if self.settings.dry_run:
            pointer = self.state.read_pointer()
            plan = self._compute(source, pointer, invalid_path=None)
            plan = write_plan(dry_run_location(self.state.base, pointer.generation), plan)
            prune_plans(self.state.base, pointer.generation, self.log)
            try:
                self._check_guards(plan)
            except HubSpotConfigError as err:
                self.log.warning("Applying this plan as it is would be refused: %s", err)
            self.log.info("Dry run: the plan is at %s; nothing was sent.", plan.location)
            return SyncOutcome(plan, pointer.generation, dry_run=True, snapshot_pairs=plan.snapshot_pairs)
        self.state.acquire()
        try:
            return self._apply(source, plan_path, failed_path)
        finally:
            self.state.release()

    # -- the plan -------------------------------------------------------------------------------------
    def _compute(self, source: SyncInput | None, pointer: Pointer, invalid_path: str | None) -> Plan:
        if source is None:
            raise HubSpotConfigError("A sync needs pairs or pairs_path unless it applies a plan (plan_path)")
        work = self.workdir
        base, table = self._base(pointer)
        check_input(
            source.rows, source.resolver, max_failed_ratio=self.settings.max_failed_ratio, keys=source.keys
        )
        spool = TripleSpool(work / "desired")
        sink = FailedPairsSink(invalid_path)
        counts = spool_desired(source.rows, source.resolver, table, spool, sink, keys=source.keys)
        sink.close()
        desired = spool.close()
        known = known_association_types(self.sender, self.from_type, self.to_type)
        check_type_ids(known, {t[1] for t in table.as_meta()}, self.from_type, self.to_type)
        mirror = self.settings.mode == "mirror"
        empty = TripleSet.empty(work / "empty")
        reconciled = 0
        if self.settings.reconcile:
            scope = merged_ids(desired.from_ids(), base.from_ids()) if mirror else desired.from_ids()
            before = self.request_count()
            current_spool = TripleSpool(work / "current")
            read_current(self.read, scope, table, current_spool)
            current = current_spool.close()
            reconciled = self.request_count() - before
            found = diff(desired, current, work / "diff")
            creates, unchanged = found.only_a, found.common
            if mirror:
                candidates = difference(base, desired, work / "gone")
                removals = intersection(candidates, current, work / "removals")
                forget = difference(candidates, current, work / "forget")
            else:
                removals = forget = empty
        else:
            found = diff(desired, base, work / "diff")
            creates, unchanged, forget = found.only_a, found.common, empty
            removals = found.only_b if mirror else empty
        self.log.info(
            "Sync plan against generation %d: %s to create, %s to remove, %s unchanged (%s in the snapshot).",
            pointer.generation,
            f"{len(creates):,}",
            f"{len(removals):,}",
            f"{unchanged:,}",
            f"{len(base):,}",
        )
        return Plan(
            state_generation=pointer.generation,
            mode=self.settings.mode,
            from_type=self.from_type,
            to_type=self.to_type,
            portal=self.portal,
            types=table.as_meta(),
            creates=creates,
            removals=removals,
            forget=forget,
            unchanged=unchanged,
            snapshot_pairs=len(base),
            reconciled=reconciled,
            input_counts={
                "total": counts.total,
                "invalid": counts.invalid,
                "unresolved": counts.unresolved,
                "duplicates": counts.triples - len(desired),
            },
        )

    def _base(self, pointer: Pointer) -> tuple[TripleSet, TypeTable]:
        """The snapshot the run starts from (empty at generation 0) and its type table."""
        location = self.state.snapshot_location(pointer)
        if location is None:
            return TripleSet.empty(self.workdir / "base"), TypeTable()
        base, meta = read_snapshot(location, self.workdir / "base")
        if (meta.from_object_type, meta.to_object_type) != (self.from_type, self.to_type):
            raise HubSpotConfigError(
                f"The sync state {self.state.base} holds {meta.from_object_type} -> {meta.to_object_type}, "
                f"not {self.from_type} -> {self.to_type}: one sync per state_path"
            )
        return base, TypeTable(meta.types)

    # -- guards ---------------------------------------------------------------------------------------
    def _check_guards(self, plan: Plan) -> None:
        """Refuse, before any write, a run that would remove more than the limits allow."""
        settings, removals, base = self.settings, len(plan.removals), plan.snapshot_pairs
        share = f" ({removals / base:.1%} of the {base:,} pairs in the snapshot)" if base else ""
        how = (
            "; nothing was sent. If that many removals are intended, raise {} for this run "
            "(None turns it off)"
        )
        if settings.max_removals is not None and removals > settings.max_removals:
            raise HubSpotConfigError(
                f"{removals:,} pairs would be removed{share}, over max_removals={settings.max_removals:,}"
                + how.format("max_removals")
            )
        if settings.max_removal_ratio is not None and base and removals / base > settings.max_removal_ratio:
            raise HubSpotConfigError(
                f"{removals:,} pairs would be removed{share}, over max_removal_ratio="
                f"{settings.max_removal_ratio}" + how.format("max_removal_ratio")
            )

    def _check_scope(self, table: TypeTable) -> None:
        """Mirror mode never manages the unlabeled type unless ``all_types``: HubSpot cascades its
        removal to every label of the pair, labels this sync may not manage."""
        if self.settings.mode != "mirror" or self.settings.all_types:
            return
        unlabeled = unlabeled_type_ids(known_association_types(self.sender, self.from_type, self.to_type))
        managed = sorted({t[1] for t in table.as_meta()} & unlabeled)
        if managed:
            raise HubSpotConfigError(
                f"Refusing to mirror association type {', '.join(map(str, managed))}: it is the unlabeled "
                f"type of {self.from_type} -> {self.to_type}, and HubSpot cascades its removal to every "
                "labelled association between the two records. Manage labels only, or pass all_types=True "
                "to allow it; nothing was sent"
            )

    # -- apply ----------------------------------------------------------------------------------------
    def _apply(self, source: SyncInput | None, plan_path: str | None, failed_path: str | None) -> SyncOutcome:
        pointer = self.state.read_pointer()
        folder = self.state.run_folder()
        journal = f"{folder}/plan.json"
        resumed = fresh = False
        if plan_path:
            plan = read_plan(plan_path, self.workdir / "plan")
            if plan is None:
                raise HubSpotConfigError(f"No sync plan at plan_path={plan_path!r}")
            check_current(plan, pointer.generation, self.from_type, self.to_type)
        elif (earlier := read_plan(journal, self.workdir / "journal")) is not None and (
            earlier.state_generation == pointer.generation
        ):
            plan, resumed = earlier, True
            self.log.info("Resuming the changes an earlier try of this run planned (%s).", journal)
        else:
            plan, fresh = self._compute(source, pointer, f"{folder}/failed-input.jsonl"), True
        self._check_guards(plan)
        table = TypeTable(plan.types)
        self._check_scope(table)
        # Saved only once nothing refuses it: a retry after a fixed input must not find a refused plan.
        location = plan.location or journal
        loads = [
            TripleLoad(
                self.sender,
                triples,
                table,
                operation,
                run_folder=folder,
                conn_id=self.conn_id,
                setup=LoadSetup(**{**self.settings.load.__dict__, "all_types": self.settings.all_types}),
                log=self.log,
                stop=self.stop,
                fingerprint={"plan": location, "generation": plan.state_generation},
            )
            for triples, operation in ((plan.creates, "create"), (plan.removals, "archive"))
        ]
        for load in loads:
            load.validate()
        if fresh:
            plan = write_plan(journal, plan)
        writer = None
        if self.ledger is not None:  # the touched pairs' before state, before the first write
            writer = self.ledger.open(self.sender, plan, plan_path or journal, self.log)
            for load in loads:
                load.load.ledger = writer
        creates, removals = loads
        creates.send()
        self.state.renew()
        removals.send()
        outcome = self._advance(pointer, plan, creates, removals, failed_path, resumed)
        outcome.read_input = fresh
        outcome.ledger_reads = None if writer is None else writer.reads
        return outcome

    def _advance(
        self,
        pointer: Pointer,
        plan: Plan,
        creates: TripleLoad,
        removals: TripleLoad,
        failed_path: str | None,
        resumed: bool,
    ) -> SyncOutcome:
        work = self.workdir / "advance"
        failed_creates, failed_removals = TripleSpool(work / "fc"), TripleSpool(work / "fr")
        failed = creates.failed_triples(failed_creates) + removals.failed_triples(failed_removals)
        accepted_creates = difference(plan.creates, failed_creates.close(), work / "ac")
        accepted_removals = difference(plan.removals, failed_removals.close(), work / "ar")
        base, _ = self._base(pointer)
        grown = union(base, accepted_creates, work / "grown")
        new = difference(difference(grown, accepted_removals, work / "shrunk"), plan.forget, work / "new")
        folder = self.state.run_folder()
        if failed_path and not combine_failures(
            failed_path,
            [
                (f"{folder}/failed-input.jsonl", "input"),
                (creates.failed_path, "create"),
                (removals.failed_path, "archive"),
            ],
        ):
            failed_path = None

        def write(location: str, generation: int) -> None:
            write_snapshot(location, new, self._meta(generation, plan.types, len(new)))

        run = {
            "at": _now(),
            "owner": self.state.owner,
            "mode": plan.mode,
            "created": len(accepted_creates),
            "removed": len(accepted_removals),
            "failed": failed,
            "pairs": len(new),
        }
        generation = self.state.commit(pointer.generation, write, run)
        self.state.remove_run_files()
        if generation >= 3:
            self.state.delete_snapshot(snapshot_name(generation - 2))
        return SyncOutcome(
            plan,
            generation,
            created=len(accepted_creates),
            removed=len(accepted_removals),
            failed=failed,
            snapshot_pairs=len(new),
            failed_pairs_path=failed_path,
            reports=(creates.report, removals.report),
            resumed=resumed or bool(creates.skipped or removals.skipped),
            resumed_skipped=creates.skipped + removals.skipped,
        )

    def _meta(self, generation: int, types: tuple[tuple[str, int], ...], pairs: int) -> SnapshotMeta:
        return SnapshotMeta(
            generation=generation,
            types=types,
            from_object_type=self.from_type,
            to_object_type=self.to_type,
            portal=self.portal,
            pairs=pairs,
            created_at=_now(),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
