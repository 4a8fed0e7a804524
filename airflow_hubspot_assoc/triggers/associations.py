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

from airflow_hubspot_assoc.exceptions import (
    HubSpotDailyLimitError,
    HubSpotRateLimitError,
    HubSpotServerError,
    HubSpotTransportError,
)
from airflow_hubspot_assoc.verification import (
    MISSING_SAMPLE_LIMIT,
    MissingPair,
    check_pairs,
    chunk_by_from_ids,
    decode_pairs,
    describe_missing,
    from_ids_of,
    progress_text,
)

#: Errors the next poll may not see again; anything else (auth, scopes, validation) ends the trigger.
TRANSIENT_ERRORS = (HubSpotRateLimitError, HubSpotServerError, HubSpotTransportError)
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
    ) -> None:
        super().__init__()
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
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until done, timed out or failed; yield exactly one event."""
        yield TriggerEvent(await self._poll())

    async def _poll(self) -> dict[str, Any]:
        from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook

        pending = [MissingPair(pair) for pair in decode_pairs(self.type_sets, self.pairs)]
        total = self.total if self.total is not None else self.confirmed + len(pending)
        confirmed = self.confirmed
        # Transient errors are retried at the next poll, so one poll need not retry for long.
        hook = HubSpotHook(
            self.hubspot_conn_id, retry_budget_seconds=max(5.0, min(300.0, self.poll_interval))
        )
        polls = 0
        while True:
            polls += 1
            error: str | None = None
            fatal: str | None = None
            still: list[MissingPair] = []
            remaining = list(chunk_by_from_ids(pending, lambda item: item.pair.from_id))
            try:
                while remaining:
                    chunk = [item.pair for item in remaining[0]]
                    read = await hook.aread_associations(
                        self.from_object_type, self.to_object_type, from_ids_of(chunk)
                    )
                    remaining.pop(0)
                    result = check_pairs(chunk, read)
                    confirmed += len(result.confirmed)
                    still.extend(result.missing)
            except HubSpotDailyLimitError as err:
                fatal = f"Reading back stopped: {err}"
            except TRANSIENT_ERRORS as err:
                error = str(err)
                self.log.warning(
                    "Poll %d: reading back failed, trying again at the next poll: %s", polls, err
                )
            except Exception as err:
                # Auth (401/403, with the hook's message), validation, configuration: waiting cannot help.
                fatal = f"Reading back failed: {err}"
            # A failed read leaves its chunk (and the ones after it) pending for the next poll.
            pending = still + [item for chunk in remaining for item in chunk]
            if fatal is not None:
                return self._event("error", fatal, confirmed, total, pending)
            if not pending:
                return self._event(
                    "success",
                    f"All associations are visible: {progress_text(confirmed, total)} "
                    f"({self.from_object_type} -> {self.to_object_type}).",
                    confirmed,
                    total,
                    pending,
                )
            self.log.info(
                "Poll %d: %s; %s not visible yet.", polls, progress_text(confirmed, total), len(pending)
            )
            remaining_time = self.deadline - self._clock()
            if remaining_time <= 0:
                message = (
                    f"Timed out waiting for HubSpot to show the associations "
                    f"({self.from_object_type} -> {self.to_object_type}): {progress_text(confirmed, total)}; "
                    f"{len(pending):,} missing, first {min(len(pending), MISSING_SAMPLE_LIMIT)}: "
                    f"{describe_missing(pending)}"
                )
                if error:
                    message += f". Last read error: {error}"
                return self._event("timeout", message, confirmed, total, pending)
            await self._sleep(min(self.poll_interval, remaining_time))

    @staticmethod
    def _event(
        status: str, message: str, confirmed: int, total: int | None, pending: Sequence[MissingPair]
    ) -> dict[str, Any]:
        return {
            "status": status,
            "message": message,
            "confirmed": confirmed,
            "total": total,
            "missing_count": len(pending),
            "missing": [item.as_dict() for item in pending[:MISSING_SAMPLE_LIMIT]],
        }
