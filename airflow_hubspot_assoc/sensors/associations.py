"""``HubSpotBatchStatusSensor``: wait until the associations a batch created are visible in HubSpot.

HubSpot's CRM is eventually consistent: an association that batch create accepted can take a while to
show up in reads. The sensor reads the pairs back with batch read and succeeds only when each one is
visible with the type it was created with.

How much memory and how many requests it needs:

* ``verify="sample"`` reads back the record's sample (at most 100 pairs).
* ``verify="all"`` streams the whole input again (path sources) in chunks of at most 1,000 from-ids;
  it keeps at most about ``max_deferred_pairs`` unconfirmed pairs in memory and stops reading new
  rows while that many are outstanding (it still counts them, so progress has a total). In poke mode
  the pairs already confirmed are remembered between pokes and never read again; in reschedule and
  deferrable mode every try starts over, because nothing may depend on one worker's memory.
* Deferrable: the worker does the first full check; when pairs are still missing it defers with just
  those pairs, if there are at most ``max_deferred_pairs`` of them (trigger kwargs live in Airflow's
  database). With more outstanding it says so in the log and keeps waiting in the worker (``mode``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_hubspot_assoc.exceptions import (
    HubSpotConfigError,
    HubSpotDailyLimitError,
    HubSpotError,
    HubSpotRateLimitError,
    HubSpotServerError,
    HubSpotTransportError,
)
from airflow_hubspot_assoc.triggers.associations import HubSpotBatchStatusTrigger
from airflow_hubspot_assoc.ui import HUBSPOT_UI_COLOR
from airflow_hubspot_assoc.verification import (
    MAX_FROM_IDS_PER_READ,
    MISSING_SAMPLE_LIMIT,
    VERIFY_MODES,
    BatchRecord,
    ExpectedPair,
    FailedPairs,
    MissingPair,
    check_pairs,
    chunk_by_from_ids,
    describe_missing,
    encode_pairs,
    from_ids_of,
    progress_text,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

#: Errors that a later poke may not see again: the hook already retried them within its budget.
TRANSIENT_ERRORS = (HubSpotRateLimitError, HubSpotServerError, HubSpotTransportError)
#: How much longer than the sensor's own timeout Airflow waits for the trigger: the trigger reports
#: the timeout itself (with the missing pairs); Airflow's deferral timeout is only the backstop.
DEFER_GRACE_SECONDS = 60.0


@dataclass
class _Progress:
    """What one execution of the sensor knows so far; rebuilt on every try (never shared by workers)."""

    #: Expected pairs of the source read back at least once (the rest were not read yet).
    position: int = 0
    confirmed: int = 0
    #: Pairs read back and not yet visible, with what HubSpot showed for them.
    pending: list[MissingPair] = field(default_factory=list)
    #: Expected pairs in the source, once counted.
    total: int | None = None
    failed: FailedPairs | None = None

    @property
    def exhausted(self) -> bool:
        """Every expected pair has been read back at least once."""
        return self.total is not None and self.position >= self.total

    @property
    def done(self) -> bool:
        """Every expected pair is visible."""
        return self.exhausted and not self.pending

    def status_text(self) -> str:
        """``812 of 1,000 confirmed`` plus what is still outstanding."""
        text = progress_text(self.confirmed, self.total)
        unread = (self.total - self.position) if self.total is not None else 0
        if self.pending:
            text += f"; {len(self.pending):,} not visible yet"
        if unread > 0:
            text += f"; {unread:,} not read back yet"
        return text


class HubSpotBatchStatusSensor(BaseSensorOperator):
    """Wait until the associations of an operator's batch record are visible in HubSpot.

    A ``CANCELED`` batch fails at once with HubSpot's reasons. Otherwise the pairs are read back
    through batch read until each one shows with its expected types (default associations accept any
    type); pairs the operator reported as failed are not waited for. At ``timeout`` the task fails
    with the count and the first missing pairs.

    :param batch: the operator's batch record, usually ``create.output``; a dict or its JSON text (templated)
    :param verify: ``sample`` reads back the record's sample (at most 100 pairs); ``all`` reads back
        every pair (path sources are read again in chunks, excluding failed pairs); ``none`` trusts a
        ``COMPLETE`` status
    :param hubspot_conn_id: the HubSpot connection; by default the one the operator used (templated)
    :param deferrable: wait in the triggerer instead of a worker slot
    :param max_deferred_pairs: defer only when at most this many pairs are still missing (they go into
        the trigger's kwargs, stored in Airflow's database); with more, wait in the worker
    :param poke_interval: seconds between read-backs
    :param timeout: seconds until the sensor fails, counted from its first check
    :param mode: ``poke`` (hold the worker slot) or ``reschedule`` (free it between read-backs)
    :return: a small summary: ``{"status", "verify", "expected", "confirmed", "batchStatus"}``.
    """

    template_fields: Sequence[str] = ("batch", "hubspot_conn_id")
    template_fields_renderers = {"batch": "json"}
    ui_color = HUBSPOT_UI_COLOR
    #: The kwargs limit of the trigger; see the module docstring.
    max_deferred_pairs_limit: ClassVar[int] = 10_000
    #: From-ids per read-back step (HubSpot's batch read takes 1,000 per request).
    read_chunk_from_ids: ClassVar[int] = MAX_FROM_IDS_PER_READ

    def __init__(
        self,
        *,
        batch: Any,
        verify: str = "sample",
        hubspot_conn_id: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_deferred_pairs: int = 10_000,
        poke_interval: timedelta | float = 30.0,
        timeout: timedelta | float = 3600.0,
        mode: str = "poke",
        **kwargs: Any,
    ) -> None:
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}, got {verify!r}")
        if not isinstance(deferrable, bool):
            raise ValueError(f"deferrable must be True or False, got {deferrable!r}")
        if (
            isinstance(max_deferred_pairs, bool)
            or not isinstance(max_deferred_pairs, int)
            or not 1 <= max_deferred_pairs <= self.max_deferred_pairs_limit
        ):
            raise ValueError(
                f"max_deferred_pairs must be an integer from 1 to {self.max_deferred_pairs_limit:,}, "
                f"got {max_deferred_pairs!r}"
            )
        _check_seconds("poke_interval", poke_interval, allow_zero=False)
        _check_seconds("timeout", timeout, allow_zero=True)
        if mode not in ("poke", "reschedule"):
            raise ValueError(f"mode must be 'poke' or 'reschedule', got {mode!r}")
        if hubspot_conn_id is not None and not isinstance(hubspot_conn_id, str):
            raise ValueError(f"hubspot_conn_id must be a connection id, got {hubspot_conn_id!r}")
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        self.batch = batch
        self.verify = verify
        self.hubspot_conn_id = hubspot_conn_id
        self.deferrable = deferrable
        self.max_deferred_pairs = max_deferred_pairs
        self._record: BatchRecord | None = None
        self._hook: HubSpotHook | None = None
        self._progress = _Progress()
        self._last_error: str | None = None

    # -- entry points -----------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        """Check the record, then wait for the pairs in the worker or (deferrable) in the triggerer."""
        started = time.time()
        # Every try starts over: in reschedule and deferrable mode another worker may run the next one.
        self._record, self._hook, self._progress = None, None, _Progress()
        record = self._load_record()
        early = self._early_result(record)
        if early is not None:
            return early
        if not self.deferrable:
            return self._wait_in_worker(context)
        if self._check(record):
            return self._result(record)
        progress = self._progress
        if self._last_error is not None:
            self.log.warning(
                "Not deferring: the first read-back failed (%s), so the pairs to hand to the trigger are "
                "not known yet. Waiting in the worker (mode=%s) instead.",
                self._last_error,
                self.mode,
            )
            return self._wait_in_worker(context)
        if not progress.exhausted or len(progress.pending) > self.max_deferred_pairs:
            self.log.warning(
                "Not deferring: %s, more than max_deferred_pairs=%s to hand to the trigger. "
                "Waiting in the worker (mode=%s) instead.",
                progress.status_text(),
                f"{self.max_deferred_pairs:,}",
                self.mode,
            )
            return self._wait_in_worker(context)
        deadline = started + self.timeout
        type_sets, pairs = encode_pairs(item.pair for item in progress.pending)
        trigger = HubSpotBatchStatusTrigger(
            hubspot_conn_id=self._conn_id(record),
            from_object_type=record.from_type,
            to_object_type=record.to_type,
            type_sets=type_sets,
            pairs=pairs,
            deadline=deadline,
            poll_interval=self.poke_interval,
            confirmed=progress.confirmed,
            total=progress.total,
        )
        self.log.info(
            "Deferring: %s; the triggerer polls every %ss.", progress.status_text(), self.poke_interval
        )
        remaining = max(deadline - time.time(), 0.0)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=remaining + max(DEFER_GRACE_SECONDS, 2 * self.poke_interval)),
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Read back the pairs still missing (and the next ones of the source); done when all are visible."""
        record = self._record if self._record is not None else self._load_record()
        if self._check(record):
            return PokeReturnValue(True, self._result(record))
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish after the trigger fired: succeed, time out or fail as its event says."""
        if not isinstance(event, dict):
            raise HubSpotError(f"The trigger ended without a usable event: {event!r}")
        status = event.get("status")
        message = str(event.get("message") or "")
        if status == "success":
            self.log.info("%s", message)
            try:
                batch_status: str | None = BatchRecord.parse(self.batch).status
            except ValueError:
                batch_status = None
            return {
                "status": "CONFIRMED",
                "verify": self.verify,
                "expected": event.get("total"),
                "confirmed": event.get("confirmed"),
                "batchStatus": batch_status,
            }
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        if status == "error":
            raise HubSpotError(message)
        raise HubSpotError(f"Unexpected trigger event status {status!r}: {event!r}")

    # -- the record -------------------------------------------------------------------------------
    def _load_record(self) -> BatchRecord:
        try:
            record = BatchRecord.parse(self.batch)
        except ValueError as err:
            raise HubSpotConfigError(str(err)) from err
        conn_id = self._conn_id(record)
        if not conn_id.strip():
            raise HubSpotConfigError(f"hubspot_conn_id must be a connection id, got {conn_id!r}")
        self._record = record
        return record

    def _conn_id(self, record: BatchRecord) -> str:
        return self.hubspot_conn_id or record.conn_id or "hubspot_default"

    def _early_result(self, record: BatchRecord) -> dict[str, Any] | None:
        """Decide without reading anything back, where the record alone decides."""
        if record.status == "CANCELED":
            self._fail(
                f"HubSpot canceled the batch ({record.from_type} -> {record.to_type}, "
                f"{record.created:,} of {record.total:,} pairs accepted before): {record.canceled_reasons()}"
            )
        if record.dry_run:
            self.log.info("The batch was a dry run: nothing was written, nothing to wait for.")
            return self._result(record, status="DRY_RUN", expected=0)
        if self.verify == "none":
            if record.status == "COMPLETE":
                self.log.info("HubSpot reported COMPLETE and verify='none': trusting the status.")
                return self._result(record, status="TRUSTED")
            self.log.info(
                "HubSpot reported %s, so verify='none' has no status to trust: reading back the sample.",
                record.status,
            )
        if record.created == 0:
            self.log.info("The batch created no associations: nothing to wait for.")
            return self._result(record, expected=0)
        return None

    def _result(
        self, record: BatchRecord, *, status: str = "CONFIRMED", expected: int | None = None
    ) -> dict[str, Any]:
        """The XCom summary; by default of a read-back that confirmed every expected pair."""
        progress = self._progress
        if status == "CONFIRMED" and expected is None:
            expected = progress.total
            self.log.info("All associations are visible: %s.", progress_text(progress.confirmed, expected))
        return {
            "status": status,
            "verify": self.verify,
            "expected": expected,
            "confirmed": progress.confirmed,
            "batchStatus": record.status,
        }

    def _fail(self, message: str) -> None:
        if self.soft_fail:
            raise AirflowSkipException(f"{message} (skipped: soft_fail)")
        raise AirflowFailException(message)

    # -- waiting ----------------------------------------------------------------------------------
    def _wait_in_worker(self, context: Context) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as err:
            raise AirflowSensorTimeout(f"{err} {self._missing_text()}") from err

    def _missing_text(self) -> str:
        progress = self._progress
        text = f"HubSpot does not show every association yet: {progress.status_text()}."
        if progress.pending:
            text += (
                f" Missing (first {min(len(progress.pending), MISSING_SAMPLE_LIMIT)}): "
                f"{describe_missing(progress.pending)}"
            )
        return text

    def _check(self, record: BatchRecord) -> bool:
        """Advance the read-back as far as one check goes; True when every expected pair is visible."""
        progress = self._progress
        try:
            self._recheck_pending(record)
            if not progress.exhausted:
                self._read_on(record)
        except HubSpotDailyLimitError:
            raise
        except TRANSIENT_ERRORS as err:
            self._last_error = str(err)
            self.log.warning("Reading back failed for now, trying again at the next poke: %s", err)
            return False
        self._last_error = None
        if progress.done:
            return True
        sample = describe_missing(progress.pending, limit=3) if progress.pending else ""
        self.log.info("%s%s", progress.status_text(), f"; e.g. {sample}" if sample else "")
        return False

    def _recheck_pending(self, record: BatchRecord) -> None:
        progress = self._progress
        if not progress.pending:
            return
        still: list[MissingPair] = []
        remaining = list(
            chunk_by_from_ids(
                progress.pending, lambda item: item.pair.from_id, max_from_ids=self.read_chunk_from_ids
            )
        )
        try:
            while remaining:
                result = self._read_back(record, [item.pair for item in remaining[0]])
                remaining.pop(0)
                progress.confirmed += len(result.confirmed)
                still.extend(result.missing)
        finally:
            # A failed read leaves its chunk (and the ones after it) pending for the next check.
            progress.pending = still + [item for chunk in remaining for item in chunk]

    def _read_on(self, record: BatchRecord) -> None:
        """Read back the source beyond ``position`` while few pairs are outstanding; count the rest."""
        progress = self._progress
        seen = 0
        chunks = chunk_by_from_ids(
            self._expected_pairs(record), lambda pair: pair.from_id, max_from_ids=self.read_chunk_from_ids
        )
        for chunk in chunks:
            start, seen = seen, seen + len(chunk)
            if seen <= progress.position:
                continue
            if start < progress.position:
                chunk = chunk[progress.position - start :]
            if len(progress.pending) >= self.max_deferred_pairs:
                continue  # only counting: enough is outstanding to wait for
            result = self._read_back(record, chunk)
            progress.confirmed += len(result.confirmed)
            progress.pending.extend(result.missing)
            progress.position += len(chunk)
        progress.total = seen

    def _read_back(self, record: BatchRecord, pairs: list[ExpectedPair]) -> Any:
        read = self._get_hook(record).read_associations(record.from_type, record.to_type, from_ids_of(pairs))
        return check_pairs(pairs, read)

    def _get_hook(self, record: BatchRecord) -> HubSpotHook:
        if self._hook is None:
            from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

            self._hook = HubSpotHook(self._conn_id(record))
        return self._hook

    # -- the expected pairs -----------------------------------------------------------------------
    def _expected_pairs(self, record: BatchRecord) -> Iterator[ExpectedPair]:
        """Every pair that should be visible, in a stable order, excluding the failed ones."""
        if self.verify != "all":
            yield from record.sample
            return
        kind = record.source.get("kind")
        if kind == "path":
            yield from self._pairs_from_path(record)
            return
        if record.created <= len(record.sample):
            yield from record.sample
            return
        if kind == "xcom":
            raise HubSpotConfigError(
                f"verify='all' needs every created pair, but the batch came from an XCom list and its "
                f"record samples only {len(record.sample):,} of {record.created:,} created pairs. Use "
                "verify='sample', or load from a file (pairs_path) so the sensor can read it again."
            )
        raise HubSpotConfigError(
            f"verify='all' cannot read the batch record's source {record.source!r}; use verify='sample'"
        )

    def _pairs_from_path(self, record: BatchRecord) -> Iterator[ExpectedPair]:
        from airflow_hubspot_assoc.association_types import AssociationType, TypeResolver
        from airflow_hubspot_assoc.pairs import InvalidRow, PairReader

        source = record.source
        path = source.get("path")
        if not isinstance(path, str) or not path:
            raise HubSpotConfigError(f"The batch record's source has no path: {source!r}")
        failed = self._failed_pairs(record)
        untyped = record.types_for_untyped_rows()
        single = record.types_used[0] if len(record.types_used) == 1 else None
        if untyped is None:
            self.log.warning(
                "The batch used several association types and its record does not say which one rows "
                "without their own type got: those rows are accepted with any type."
            )
        resolver = TypeResolver(
            tuple(AssociationType(*key) for key in sorted(untyped or ())),
            record.default_category,
            lambda name: self._get_hook(record).resolve_label(record.from_type, record.to_type, name),
        )
        reader = PairReader.from_path(
            path,
            from_id_field=str(source.get("fromIdField") or "from_id"),
            to_id_field=str(source.get("toIdField") or "to_id"),
        )
        for row in reader:
            if isinstance(row, InvalidRow):
                continue  # never sent: counted as invalid by the operator
            if single is not None:
                types = single
            elif untyped is None and row.types is None and row.label is None and row.type_id is None:
                types = frozenset()
            else:
                types = frozenset((t.category, t.type_id) for t in resolver.types_of(row))
            pair = ExpectedPair(row.from_id, row.to_id, types)
            if failed and pair in failed:
                continue
            yield pair

    def _failed_pairs(self, record: BatchRecord) -> FailedPairs:
        progress = self._progress
        if progress.failed is not None:
            return progress.failed
        if record.failed == 0:
            failed = FailedPairs()
        elif record.failed_pairs_path:
            try:
                failed = FailedPairs(pairs=_read_failed_pairs(record.failed_pairs_path))
            except OSError as err:
                raise HubSpotConfigError(
                    f"Cannot read the batch's failed pairs at {record.failed_pairs_path!r} ({err}); "
                    "verify='all' needs them to know which pairs not to wait for"
                ) from err
        else:
            from_errors = record.failed_pairs_from_errors()
            if from_errors is None:
                raise HubSpotConfigError(
                    f"{record.failed:,} pairs of the batch failed and its record keeps only "
                    f"{len(record.errors)} errors, so verify='all' cannot tell which pairs not to wait for. "
                    "Set failed_pairs_path on BatchCreateAssociationsOperator (the sensor reads it), "
                    "or use verify='sample'."
                )
            failed = from_errors
        progress.failed = failed
        return failed


def _check_seconds(name: str, value: object, *, allow_zero: bool) -> None:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0 or seconds != seconds:
        raise ValueError(f"{name} must be a non-negative number of seconds or a timedelta, got {value!r}")
    if not allow_zero and seconds == 0:
        raise ValueError(f"{name} must be more than 0 seconds, got {value!r}")


def _read_failed_pairs(path: str) -> set[tuple[str, str]]:
    """The ``(from_id, to_id)`` of every line of the operator's failed-pairs file (JSON Lines)."""
    pairs: set[tuple[str, str]] = set()
    for number, line in enumerate(_open_text(path), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as err:
            raise HubSpotConfigError(f"{path}, line {number}: not JSON ({err})") from err
        from_id, to_id = (
            (entry.get("from_id"), entry.get("to_id")) if isinstance(entry, dict) else (None, None)
        )
        if from_id is not None and to_id is not None:
            pairs.add((str(from_id), str(to_id)))
    return pairs


def _open_text(path: str) -> Iterator[str]:
    if "://" in path:
        from airflow.sdk import ObjectStoragePath

        with ObjectStoragePath(path).open("r", encoding="utf-8") as remote:
            yield from remote
        return
    with open(path, encoding="utf-8") as local:
        yield from local
