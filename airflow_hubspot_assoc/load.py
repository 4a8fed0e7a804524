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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc.api import BATCH_CREATE_MAX_INPUTS
from airflow_hubspot_assoc.batches import Batch, BatchBuilder, BatchOutcome, interpret, whole_batch_failure
from airflow_hubspot_assoc.checkpoint import CheckpointSaver
from airflow_hubspot_assoc.exceptions import HubSpotConfigError, HubSpotValidationError, PairInputError
from airflow_hubspot_assoc.pairs import InvalidRow, Pair
from airflow_hubspot_assoc.progress import ProgressReporter
from airflow_hubspot_assoc.segments import InFlight, Segment

if TYPE_CHECKING:
    from airflow_hubspot_assoc.association_types import TypeResolver
    from airflow_hubspot_assoc.batches import Failure
    from airflow_hubspot_assoc.checkpoint import CheckpointStore
    from airflow_hubspot_assoc.client.sender import AssociationSender
    from airflow_hubspot_assoc.failed_pairs import FailedPairsSink
    from airflow_hubspot_assoc.keys.resolver import KeyResolver
    from airflow_hubspot_assoc.report import LoadReport

#: HubSpot's own tooling caps batch create at 100 inputs; a larger batch that HubSpot refuses is split.
HUBSPOT_BATCH_CAP = BATCH_CREATE_MAX_INPUTS
TOO_LARGE_STATUSES = frozenset({400, 413})
#: Distinct per-row type ids checked before the first write (more would only be checked by HubSpot).
MAX_CHECKED_TYPE_IDS = 1_000


@dataclass(frozen=True)
class LoadSettings:
    """How to send: sizes, tolerance and how often to checkpoint (concurrency is the hook's).

    ``checkpoint_interval`` is the least time between two checkpoint writes; 0 writes one after every
    commit (still one write in flight: commits made during a write coalesce into the next).
    """

    batch_size: int = 100
    max_failed_ratio: float = 0.0
    dry_run: bool = False
    progress_interval: float = 5.0
    checkpoint_interval: float = 0.0
    log_failures: int = 100


class LoadStopped(Exception):
    """``on_kill`` asked the load to stop; raised after the requests in flight were accounted for."""


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
        strict = self.settings.max_failed_ratio <= 0
        total = invalid = 0
        labels: set[str] = set()
        type_ids: set[int] = {t.type_id for t in self.resolver.default_types}
        first_invalid: list[InvalidRow] = []
        collect = self.keys.collect if self.keys is not None else None
        for row in self.rows:
            total += 1
            if isinstance(row, InvalidRow):
                if strict:
                    raise row.to_error()
                invalid += 1
                if len(first_invalid) < 5:
                    first_invalid.append(row)
                continue
            if collect is not None:
                collect(row)
            if row.types is not None:
                if len(type_ids) < MAX_CHECKED_TYPE_IDS:
                    type_ids.update(type_id for _, type_id in row.types)
            elif row.label is not None:
                labels.add(row.label)
            elif row.type_id is not None and len(type_ids) < MAX_CHECKED_TYPE_IDS:
                type_ids.add(row.type_id)
        self.report.total = total
        if total and invalid / total > self.settings.max_failed_ratio:
            details = "; ".join(str(row.to_error()) for row in first_invalid)
            raise PairInputError(
                f"{invalid:,} of {total:,} rows are invalid, over max_failed_ratio="
                f"{self.settings.max_failed_ratio}; first ones: {details}",
                source=str(first_invalid[0].source),
            )
        self._check_association_types(type_ids)
        for label in sorted(labels):
            self.resolver.label(label)
        if self.keys is not None:
            self.keys.resolve()
        self.log.info("Validated %s rows (%s invalid) before sending anything.", f"{total:,}", f"{invalid:,}")

    def _check_association_types(self, type_ids: set[int]) -> None:
        """One read before any write: the object pair exists and knows every type id the load uses.

        Without it, an unknown object type or type id would only show as a 400 on every batch.
        """
        try:
            known = self.sender.association_types()
        except HubSpotValidationError as err:
            raise HubSpotConfigError(
                f"HubSpot does not accept the object pair from_object_type={self.from_type!r} -> "
                f"to_object_type={self.to_type!r}: {err.hubspot_message}"
            ) from err
        existing = {int(entry["typeId"]) for entry in known if isinstance(entry.get("typeId"), int)}
        unknown = sorted(type_ids - existing)
        if unknown:
            described = ", ".join(
                f"{entry['typeId']} ({entry.get('category')}, {entry.get('label') or 'unlabeled'})"
                for entry in known
            )
            raise HubSpotConfigError(
                f"association_type_id {', '.join(map(str, unknown))} is not a type of {self.from_type} -> "
                f"{self.to_type}; HubSpot has: {described or 'none'}"
            )

    # -- resume -------------------------------------------------------------------------------
    def resume(self) -> int:
        """Continue from a checkpoint of an earlier try of this task, if one matches this input.

        :return: how many rows are skipped (0 when starting afresh).
        """
        if self.checkpoint is None:
            return 0
        state = self.checkpoint.load()
        if state is None:
            return 0
        if state.get("fingerprint") != self.fingerprint:
            self.log.warning(
                "Ignoring the checkpoint at %s: it was written for another input (%s, now %s).",
                self.checkpoint.location,
                state.get("fingerprint"),
                self.fingerprint,
            )
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
                    read, len(sendable), builder.duplicates - duplicates_before, pending_invalid
                )
                self._segments[number].unresolved = pending_unresolved
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
                    "Stopped after %s of %s rows were accounted for (%s created, %s failed).",
                    f"{self._committed_rows:,}",
                    f"{self.report.total:,}",
                    f"{self.report.created:,}",
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
                self._commit_failures(outcome.failures)
            for failure in segment.unresolved:
                self.report.failed += 1
                self.report.add_error(
                    {"category": failure.category, "message": failure.message, "context": failure.detail}
                )
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
        outcome = interpret(batch, response.body)
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
        self._copy_hook_counters()
