"""``HubSpotBatchStatusTrigger``: poll HubSpot's batch read in the triggerer until pairs are visible.

The trigger only reads (a triggerer restart may run it again from its kwargs), never blocks the event
loop (the hook's async read), pauses between polls also after errors, and ends with exactly one event:

``{"status": "success" | "timeout" | "error", "message": str, "confirmed": int, "total": int | None,
"missing_count": int, "missing": [at most 20 pairs]}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_hubspot_assoc.exceptions import HubSpotDailyLimitError
from airflow_hubspot_assoc.readback import MISSING_SAMPLE_LIMIT, ReadBack, decode_pairs, progress_text

EVENT_STATUSES = ("success", "timeout", "error")


class HubSpotBatchStatusTrigger(BaseTrigger):
    """Poll batch read until every expected pair is visible with its types, or until ``deadline``.

    :param hubspot_conn_id: the HubSpot connection (the token stays there, never in kwargs)
    :param from_object_type: object type of the ``from`` records
    :param to_object_type: object type of the ``to`` records
    :param type_sets: the distinct expected type sets, each a list of ``[category, type id]``
    :param pairs: the pairs still missing, each ``[from_id, to_id, index into type_sets]``
    :param deadline: absolute time (epoch seconds) at which to give up with a ``timeout`` event
    :param poll_interval: seconds between polls
    :param confirmed: pairs the worker confirmed before deferring (for progress and the event)
    :param total: all expected pairs (confirmed before deferring plus ``pairs``)
    :param absent: wait for the pairs' types to be gone (an archive record) instead of visible
    :param absent_rows: positions in ``pairs`` of the pairs to wait for to be gone while the others
        must be visible (a revert record's removals)
    """

    def __init__(
        self,
        *,
        hubspot_conn_id: str,
        from_object_type: str,
        to_object_type: str,
        type_sets: Sequence[Sequence[Sequence[Any]]],
        pairs: Sequence[Sequence[Any]],
        deadline: float,
        poll_interval: float = 30.0,
        confirmed: int = 0,
        total: int | None = None,
        absent: bool = False,
        absent_rows: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.absent = bool(absent)
        self.absent_rows = [int(position) for position in absent_rows]
        self.hubspot_conn_id = hubspot_conn_id
        self.from_object_type = from_object_type
        self.to_object_type = to_object_type
        self.type_sets = [[[str(category), int(type_id)] for category, type_id in item] for item in type_sets]
        self.pairs = [[str(from_id), str(to_id), int(position)] for from_id, to_id, position in pairs]
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.confirmed = int(confirmed)
        self.total = None if total is None else int(total)
        # Seams for tests (not serialized): the wall clock and the pause between polls.
        self._clock: Callable[[], float] = time.time
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The classpath and plain values only: no token, no objects."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "hubspot_conn_id": self.hubspot_conn_id,
                "from_object_type": self.from_object_type,
                "to_object_type": self.to_object_type,
                "type_sets": self.type_sets,
                "pairs": self.pairs,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "confirmed": self.confirmed,
                "total": self.total,
                "absent": self.absent,
                # Only a revert's trigger has them: other triggers' kwargs stay as they were.
                **({"absent_rows": self.absent_rows} if self.absent_rows else {}),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until done, timed out or failed; yield exactly one event."""
        yield TriggerEvent(await self._poll())

    async def _poll(self) -> dict[str, Any]:
        from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

        pending = decode_pairs(self.type_sets, self.pairs)
        readback = ReadBack(
            self.from_object_type,
            self.to_object_type,
            pending=pending,
            confirmed=self.confirmed,
            total=self.total,
            absent=self.absent,
            absent_pairs=[pending[position] for position in self.absent_rows],
        )
        # Transient errors are retried at the next poll, so one poll need not retry for long.
        hook = HubSpotHook(
            self.hubspot_conn_id, retry_budget_seconds=max(5.0, min(300.0, self.poll_interval))
        )
        polls = 0
        while True:
            polls += 1
            try:
                done = await readback.acheck(hook.aread_associations)
            except HubSpotDailyLimitError as err:
                return self._event("error", f"Reading back stopped: {err}", readback)
            except Exception as err:
                # Auth (401/403, with the hook's message), validation, configuration: waiting cannot help.
                return self._event("error", f"Reading back failed: {err}", readback)
            if readback.last_error is not None:
                self.log.warning(
                    "Poll %d: reading back failed, trying again at the next poll: %s",
                    polls,
                    readback.last_error,
                )
            confirmed, total = readback.confirmed, readback.total
            if done:
                return self._event(
                    "success",
                    f"All associations are {'gone' if self.absent else 'visible'}: "
                    f"{progress_text(confirmed, total)} "
                    f"({self.from_object_type} -> {self.to_object_type}).",
                    readback,
                )
            missing = len(readback.pending)
            self.log.info("Poll %d: %s; %s not visible yet.", polls, progress_text(confirmed, total), missing)
            remaining_time = self.deadline - self._clock()
            if remaining_time <= 0:
                message = (
                    f"Timed out waiting for HubSpot to show the associations "
                    f"({self.from_object_type} -> {self.to_object_type}): {progress_text(confirmed, total)}; "
                    f"{missing:,} missing, first {min(missing, MISSING_SAMPLE_LIMIT)}: "
                    f"{readback.missing_text()}"
                )
                if readback.last_error:
                    message += f". Last read error: {readback.last_error}"
                return self._event("timeout", message, readback)
            await self._sleep(min(self.poll_interval, remaining_time))

    @staticmethod
    def _event(status: str, message: str, readback: ReadBack) -> dict[str, Any]:
        return {
            "status": status,
            "message": message,
            "confirmed": readback.confirmed,
            "total": readback.total,
            "missing_count": len(readback.pending),
            "missing": readback.missing_sample(),
        }
