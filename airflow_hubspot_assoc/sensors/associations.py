"""``HubSpotBatchStatusSensor``: wait until the associations a batch created are visible in HubSpot.

HubSpot's CRM is eventually consistent: an association that batch create accepted can take a while to
show up in reads. The sensor reads the pairs back with batch read and succeeds only when each one is
visible with the type it was created with. For an archive record (``operation: "archive"``) it waits
for the opposite: each pair no longer shows the types removed (no association at all when every type
was removed); for a revert or sync record, both: restored or created types visible, removed ones
gone (``removedSample``), in the worker and through the trigger alike. ``readback``
decides, the sensor only drives it.

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

import time
from collections.abc import Sequence
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

from airflow_hubspot_assoc.api import BATCH_READ_MAX_INPUTS
from airflow_hubspot_assoc.exceptions import HubSpotConfigError, HubSpotError
from airflow_hubspot_assoc.readback import (
    MISSING_SAMPLE_LIMIT,
    VERIFY_MODES,
    ExpectedPairs,
    ReadBack,
    encode_pairs,
    progress_text,
)
from airflow_hubspot_assoc.record import PAST_TENSE, BatchRecord
from airflow_hubspot_assoc.triggers.associations import HubSpotBatchStatusTrigger
from airflow_hubspot_assoc.ui import HUBSPOT_UI_COLOR

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

#: How much longer than the sensor's own timeout Airflow waits for the trigger: the trigger reports
#: the timeout itself (with the missing pairs); Airflow's deferral timeout is only the backstop.
DEFER_GRACE_SECONDS = 60.0


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
    read_chunk_from_ids: ClassVar[int] = BATCH_READ_MAX_INPUTS

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
        self._progress: ReadBack | None = None

    # -- entry points -----------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        """Check the record, then wait for the pairs in the worker or (deferrable) in the triggerer."""
        started = time.time()
        # Every try starts over: in reschedule and deferrable mode another worker may run the next one.
        self._record, self._hook, self._progress = None, None, None
        record = self._load_record()
        early = self._early_result(record)
        if early is not None:
            return early
        if not self.deferrable:
            return self._wait_in_worker(context)
        if self._check(record):
            return self._result(record)
        progress = self._readback(record)
        if progress.last_error is not None:
            self.log.warning(
                "Not deferring: the first read-back failed (%s), so the pairs to hand to the trigger are "
                "not known yet. Waiting in the worker (mode=%s) instead.",
                progress.last_error,
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
            absent=progress.absent,
            absent_rows=[n for n, item in enumerate(progress.pending) if item.absent and not progress.absent],
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
                batch_status: str | None = BatchRecord.from_xcom(self.batch).status
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
            record = BatchRecord.from_xcom(self.batch)
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
                f"{record.written:,} of {record.total:,} pairs accepted before): {record.canceled_reasons()}"
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
        if record.written == 0:
            self.log.info("The batch %s no associations: nothing to wait for.", PAST_TENSE[record.operation])
            return self._result(record, expected=0)
        return None

    def _result(
        self, record: BatchRecord, *, status: str = "CONFIRMED", expected: int | None = None
    ) -> dict[str, Any]:
        """The XCom summary; by default of a read-back that confirmed every expected pair."""
        confirmed = self._progress.confirmed if self._progress is not None else 0
        if status == "CONFIRMED" and expected is None:
            expected = self._progress.total if self._progress is not None else None
            self.log.info(
                "All associations are %s: %s.",
                {
                    "archive": "gone",
                    "revert": "as they were before the run",
                    "sync": "as the sync left them (created visible, removed gone)",
                }.get(record.operation, "visible"),
                progress_text(confirmed, expected),
            )
        return {
            "status": status,
            "verify": self.verify,
            "expected": expected,
            "confirmed": confirmed,
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
        if progress is None:
            return "HubSpot does not show every association yet."
        text = f"HubSpot does not show every association yet: {progress.status_text()}."
        if progress.pending:
            shown = min(len(progress.pending), MISSING_SAMPLE_LIMIT)
            text += f" Missing (first {shown}): {progress.missing_text()}"
        return text

    def _readback(self, record: BatchRecord) -> ReadBack:
        """This execution's read-back (rebuilt on every try: nothing may depend on one worker's memory)."""
        if self._progress is None:
            expected = ExpectedPairs(
                record,
                self.verify,
                lambda name: self._get_hook(record).resolve_label(record.from_type, record.to_type, name),
                self.log,
            )
            self._progress = ReadBack(
                record.from_type,
                record.to_type,
                expected,
                max_from_ids=self.read_chunk_from_ids,
                max_outstanding=self.max_deferred_pairs,
                # An archive record: wait until its pairs no longer show the removed types.
                absent=record.operation == "archive",
                # A revert or sync record: also until the pairs it removed from no longer show those
                # types (the trigger gets their positions as ``absent_rows`` when the check defers).
                absent_pairs=record.removed_sample,
            )
        return self._progress

    def _check(self, record: BatchRecord) -> bool:
        """Advance the read-back as far as one check goes; True when every expected pair is visible."""
        progress = self._readback(record)
        if progress.check(self._get_hook(record).read_associations):
            return True
        if progress.last_error is not None:
            self.log.warning(
                "Reading back failed for now, trying again at the next poke: %s", progress.last_error
            )
            return False
        sample = progress.missing_text(limit=3) if progress.pending else ""
        self.log.info("%s%s", progress.status_text(), f"; e.g. {sample}" if sample else "")
        return False

    def _get_hook(self, record: BatchRecord) -> HubSpotHook:
        if self._hook is None:
            from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

            self._hook = HubSpotHook(self._conn_id(record))
        return self._hook


def _check_seconds(name: str, value: object, *, allow_zero: bool) -> None:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0 or seconds != seconds:
        raise ValueError(f"{name} must be a non-negative number of seconds or a timedelta, got {value!r}")
    if not allow_zero and seconds == 0:
        raise ValueError(f"{name} must be more than 0 seconds, got {value!r}")
