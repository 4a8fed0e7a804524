"""One load: validate the whole input, then stream it to HubSpot in concurrent batches.

Two passes over the input keep memory flat and make bad input cost nothing: the first pass validates
every row (and counts them, for progress and ETA) before the first write; the second builds batches
and keeps at most twice as many of them in memory as may be in flight.

The second pass cuts the input into *segments*: the rows read until a batch fills, with the batches
they made, their duplicates and their invalid rows. Answers arrive out of order, but a segment is
committed (added to the record and to the failed-pairs output) only once it and every segment before
it are answered. So at any moment "rows before N are accounted for" holds for the committed prefix;
that is what a checkpoint saves, and a retry after a crash skips exactly those rows. Commits happen on
the calling thread only, so the counts need no locks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc.api import BATCH_CREATE_MAX_INPUTS
from airflow_hubspot_assoc.batches import Batch, BatchBuilder, BatchOutcome, outcome_of, whole_batch_failure
from airflow_hubspot_assoc.checkpoint import CheckpointSaver
from airflow_hubspot_assoc.exceptions import HubSpotValidationError
from airflow_hubspot_assoc.guards import (
    check_archive_scope,
    check_type_ids,
    check_write_limits,
    known_association_types,
)
from airflow_hubspot_assoc.load_settings import LoadSettings, LoadStopped
from airflow_hubspot_assoc.pairs import InvalidRow, Pair
from airflow_hubspot_assoc.progress import ProgressReporter
from airflow_hubspot_assoc.segments import InFlight, Segment
from airflow_hubspot_assoc.survey import survey_input

if TYPE_CHECKING:
    from airflow_hubspot_assoc.association_types import TypeResolver
    from airflow_hubspot_assoc.batches import Failure
    from airflow_hubspot_assoc.checkpoint import CheckpointStore
    from airflow_hubspot_assoc.client.sender import AssociationSender
    from airflow_hubspot_assoc.failed_pairs import FailedPairsSink
    from airflow_hubspot_assoc.keys.resolver import KeyResolver
    from airflow_hubspot_assoc.ledger import LedgerWriter
    from airflow_hubspot_assoc.report import LoadReport

#: HubSpot's own tooling caps batch create at 100 inputs; a larger batch that HubSpot refuses is split.
HUBSPOT_BATCH_CAP = BATCH_CREATE_MAX_INPUTS
TOO_LARGE_STATUSES = frozenset({400, 413})
__all__ = ["AssociationLoad", "LoadSettings", "LoadStopped"]


class AssociationLoad:
    """Validate, batch, send and account for every pair of one input."""

    def __init__(
        self,
        sender: AssociationSender,
        from_type: str,
        to_type: str,
        rows: Iterable[Pair | InvalidRow],
        resolver: TypeResolver,
        report: LoadReport,
        sink: FailedPairsSink,
        settings: LoadSettings,
        *,
        log: logging.Logger,
        stop: threading.Event | None = None,
        checkpoint: CheckpointStore | None = None,
        fingerprint: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        keys: KeyResolver | None = None,
        collect: Callable[[Pair], None] | None = None,
    ) -> None:
        self.sender = sender
        self.from_type = from_type
        self.to_type = to_type
        self.rows = rows
        self.resolver = resolver
        self.report = report
        self.sink = sink
        self.settings = settings
        self.log = log
        self.stop = stop or threading.Event()
        self.checkpoint = checkpoint
        self.fingerprint = fingerprint or {}
        self._clock = clock
        # Business keys (issue 13): collected in pass 1, resolved before any write, applied in pass 2.
        self.keys = keys
        # The ledger (issue 14): ``collect`` sees every valid pair in pass 1; the operator sets
        # ``ledger`` after its read, and each committed pair HubSpot accepted is recorded in it.
        self.collect = collect
        self.ledger: LedgerWriter | None = None
        self._batch_limit = settings.batch_size
        self._logged_failures = 0
        self._segments: dict[int, Segment] = {}
        self._next_commit = 0
        self._committed_rows = 0
        self._skip_rows = 0
        self._unsaved_failures: list[dict[str, Any]] = []
        self._uncommitted_batches = 0
        self._saved_rows = -1
        self._last_save = float("-inf")
        self._saver = (
            CheckpointSaver(checkpoint, log) if checkpoint is not None and not settings.dry_run else None
        )

    # -- pass 1 -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Read the whole input once: count rows, stop at the first bad row unless failures are
        tolerated, and resolve every label named by a row, all before the first write."""
        survey = survey_input(
            self.rows,
            self.resolver.default_types,
            max_failed_ratio=self.settings.max_failed_ratio,
            on_pair=_both(self.keys.collect if self.keys is not None else None, self.collect),
        )
        total, invalid, type_ids = survey.total, survey.invalid, survey.type_ids
        self.report.total = total
        settings = self.settings
        check_write_limits(
            settings.operation, total - invalid, total, settings.max_writes, settings.max_write_ratio
        )
        known = known_association_types(self.sender, self.from_type, self.to_type)
        check_type_ids(known, type_ids, self.from_type, self.to_type)
        if settings.operation == "archive" and not settings.all_types:
            check_archive_scope(known, type_ids, survey.untyped, self.from_type, self.to_type)
        for label in sorted(survey.labels):
            self.resolver.label(label)
        if self.keys is not None:
            self.keys.resolve()
        self.log.info("Validated %s rows (%s invalid) before sending anything.", f"{total:,}", f"{invalid:,}")

    # -- resume -------------------------------------------------------------------------------
    def resume(self) -> int:
        """Continue from a checkpoint of an earlier try of this task, if one matches this input.

        :return: how many rows are skipped (0 when starting afresh).
        """
        if self.checkpoint is None or (state := self.checkpoint.matching_state(self.fingerprint)) is None:
            return 0
        for entry in self.checkpoint.failed_entries(state):
            self.sink.add_entry(entry)
        self.report.restore(state["record"])
        self._skip_rows = self._committed_rows = int(state["rows"])
        self.log.info(
            "Resuming from the checkpoint at %s: %s rows were confirmed by an earlier try and are skipped.",
            self.checkpoint.location,
            f"{self._skip_rows:,}",
        )
        return self._skip_rows

    # -- pass 2 -------------------------------------------------------------------------------
    def send(self) -> None:
        """Stream the input in batches, as many in flight as the limiter allows; commit segments in order."""
        builder = BatchBuilder(self.settings.batch_size)
        progress = ProgressReporter(self.log, self.report.total, interval=self.settings.progress_interval)
        in_flight = InFlight()
        # Threads start as needed: as many as the limiter lets requests be in flight (``capacity().now``:
        # the concurrency cap, or a rate-limit window's free room), never more than the sender allows.
        workers = self.sender.capacity().most
        duplicates_before = 0
        pending_invalid: list[InvalidRow] = []
        pending_unresolved: list[Failure] = []
        apply_keys = self.keys.apply if self.keys is not None else None
        last_types: object = None
        read = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hubspot-batch") as pool:

            def close_segment(batches: Sequence[Batch]) -> None:
                nonlocal duplicates_before, pending_invalid, pending_unresolved
                number = len(self._segments) + self._next_commit
                sendable = [] if self.settings.dry_run else batches
                self._segments[number] = Segment(
                    read,
                    len(sendable),
                    builder.duplicates - duplicates_before,
                    pending_invalid,
                    unresolved=pending_unresolved,
                )
                duplicates_before, pending_invalid, pending_unresolved = builder.duplicates, [], []
                for batch in sendable:
                    batch.segment = number
                    # Answered batches wait behind a slow one until their segment commits; counting
                    # them too bounds both memory and what a crash can make a retry send again.
                    while in_flight:
                        cap = self.sender.capacity().now
                        if len(in_flight) < cap and self._uncommitted_batches < 2 * cap:
                            break
                        self._collect(in_flight, block=True)
                    in_flight.add(pool.submit(self._send, batch), number)
                    self._uncommitted_batches += 1
                self._commit_ready()

            try:
                skip_rows, stopped = self._skip_rows, self.stop.is_set
                types_of, add = self.resolver.types_of, builder.add
                for row in self.rows:
                    read += 1
                    if read <= skip_rows:
                        continue
                    if isinstance(row, InvalidRow):
                        if stopped():
                            raise LoadStopped
                        pending_invalid.append(row)
                        continue
                    if apply_keys is not None:
                        resolved = apply_keys(row)
                        if not isinstance(resolved, Pair):
                            pending_unresolved.append(resolved)
                            continue
                        row = resolved
                    types = types_of(row)
                    if types is not last_types:  # the resolver hands out shared tuples
                        self.report.note_types(types)
                        last_types = types
                    closed = add(row, types)
                    if closed:
                        # Per batch, not per row: polling futures (or the stop flag) costs more than
                        # reading a row.
                        if stopped():
                            raise LoadStopped
                        close_segment(closed)
                        self._collect(in_flight, block=False)
                        builder.batch_size = self._batch_limit
                        progress.update(self._committed_rows, self.sender.counters().throttled)
                close_segment(builder.flush())
                while in_flight:
                    self._collect(in_flight, block=True)
            except BaseException:
                # Stop cleanly: no new batches, but account for the ones already sent.
                for future in in_flight.segments:
                    future.cancel()
                for future, number in in_flight.segments.items():
                    if not future.cancelled() and future.exception() is None:
                        self._segments[number].outcomes.extend(future.result())
                        self._segments[number].answered += 1
                self._commit_ready()
                self._save_checkpoint(force=True)
                if self._saver is not None:
                    self._saver.close()
                self._finish()
                self.log.warning(
                    "Stopped after %s of %s rows were accounted for (%s %sd, %s failed).",
                    f"{self._committed_rows:,}",
                    f"{self.report.total:,}",
                    f"{self.report.created:,}",
                    self.settings.operation,
                    f"{self.report.failed:,}",
                )
                raise
        if self._saver is not None:
            # Done: the checkpoint is about to be cleared, so drop what is queued (a late write
            # would bring it back) and wait for a write in flight.
            self._saver.close(discard=True)
        self._finish()
        progress.update(self._committed_rows, self.sender.counters().throttled, force=True)

    def _collect(self, in_flight: InFlight, *, block: bool) -> None:
        """Take in finished requests and commit the segments they complete."""
        finished = in_flight.take_finished(block=block)
        for future, number in finished:
            segment = self._segments[number]
            segment.outcomes.extend(future.result())
            segment.answered += 1
        if finished:
            self._commit_ready()

    def _commit_ready(self) -> None:
        """Commit, in input order, every segment whose batches have all been answered."""
        while (segment := self._segments.get(self._next_commit)) is not None and segment.open_batches == 0:
            del self._segments[self._next_commit]
            self._next_commit += 1
            for row in segment.invalid:
                entry = self.sink.add_invalid(row)
                self._remember(entry)
                self._log_failure(str(row.to_error()))
            for outcome in segment.outcomes:
                self.report.add_outcome(outcome)
                if self.ledger is not None:
                    for item in outcome.created:
                        self.ledger.record(
                            item.pair.from_id, item.pair.to_id, item.types, self.settings.operation
                        )
                self._commit_failures(outcome.failures)
            self.report.add_unresolved(segment.unresolved)
            self._commit_failures(segment.unresolved)
            self._uncommitted_batches -= segment.batches
            self.report.duplicates += segment.duplicates
            self.report.invalid += len(segment.invalid)
            self._committed_rows = segment.end_row
        self._save_checkpoint()

    def _commit_failures(self, failures: Sequence[Failure]) -> None:
        for failure in failures:
            entry = self.sink.add_failure(failure)
            self._remember(entry)
            self._log_failure(
                f"{failure.pair.source} line {failure.pair.line}: {failure.pair.from_id} -> "
                f"{failure.pair.to_id} failed [{failure.category}] {failure.message}"
            )

    def _remember(self, entry: dict[str, Any]) -> None:
        if self._saver is not None:
            self._unsaved_failures.append(entry)

    def _save_checkpoint(self, *, force: bool = False) -> None:
        """Hand the committed state to the checkpoint writer (it writes off this thread)."""
        if self._saver is None or (self._committed_rows == self._saved_rows and not force):
            return
        now = self._clock()
        if not force and now - self._last_save < self.settings.checkpoint_interval:
            return
        self._last_save, self._saved_rows = now, self._committed_rows
        if self.ledger is not None:  # before the state: the ledger covers every row a checkpoint skips
            self.ledger.flush()
        self._copy_hook_counters()
        # The writer serialises on its own thread while this one goes on adding to the record:
        # hand it copies of the record's lists and maps (their entries are never changed).
        record = {
            name: value.copy() if isinstance(value, list | dict) else value
            for name, value in self.report.snapshot().items()
        }
        self._saver.submit(
            {"fingerprint": self.fingerprint, "rows": self._committed_rows, "record": record},
            self._unsaved_failures,
        )
        self._unsaved_failures = []

    def _log_failure(self, text: str) -> None:
        if self._logged_failures < self.settings.log_failures:
            self.log.warning("%s", text)
        elif self._logged_failures == self.settings.log_failures and self.sink.path is None:
            self.log.warning(
                "More failures are counted but not logged; set failed_pairs_path to keep them all."
            )
        self._logged_failures += 1

    def _send(self, batch: Batch) -> list[BatchOutcome]:
        """Send one batch (on a worker thread); split it when HubSpot says it is too large."""
        try:
            if self.settings.operation == "archive":
                # A default batch has no types: it removes every association between each pair.
                encoded = batch.encoded_archive_inputs() if batch.default else batch.encoded_inputs()
                response = self.sender.archive(encoded, all_types=batch.default)
            else:
                response = self.sender.send(batch.encoded_inputs(), default=batch.default)
        except HubSpotValidationError as err:
            size = len(batch.items)
            if err.status in TOO_LARGE_STATUSES and size > HUBSPOT_BATCH_CAP:
                self._batch_limit = min(self._batch_limit, max(HUBSPOT_BATCH_CAP, size // 2))
                self.log.warning(
                    "HubSpot refused a batch of %d inputs; splitting it and sending smaller ones.", size
                )
                first, second = batch.halves()
                return self._send(first) + self._send(second)
            return [
                whole_batch_failure(
                    batch, err.category or "VALIDATION_ERROR", err.hubspot_message, err.correlation_id
                )
            ]
        outcome = outcome_of(batch, response.body)
        if self.keys is not None and outcome.failures:
            # A cached key may name a merged or deleted record: resolved again and sent once more.
            return [self.keys.retry_stale(batch, outcome, self._send)]
        return [outcome]

    def _copy_hook_counters(self) -> None:
        stats = self.sender.counters()
        self.report.requests = self.report.base_requests + stats.requests
        self.report.retries = self.report.base_retries + stats.retries
        self.report.throttled = self.report.base_throttled + stats.throttled

    def _finish(self) -> None:
        """Close the failed-pairs output and copy this try's request counters into the report."""
        self.sink.close()
        if self.ledger is not None:
            self.ledger.flush()
        self._copy_hook_counters()


def _both(
    first: Callable[[Pair], None] | None, second: Callable[[Pair], None] | None
) -> Callable[[Pair], None] | None:
    """One ``on_pair`` hook calling both (business keys and the ledger both collect in pass 1)."""
    if first is None or second is None:
        return first or second

    def call(pair: Pair) -> None:
        first(pair)
        second(pair)

    return call
