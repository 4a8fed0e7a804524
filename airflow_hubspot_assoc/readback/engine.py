"""The read-back engine: check expected pairs against HubSpot's batch read, chunk by chunk.

One check goes over the pairs still missing (in chunks of at most ``max_from_ids`` from-ids, one
batch read each) and then, while the source has pairs not read back yet and fewer than
``max_outstanding`` are missing, over the next ones. The check itself is written once, as a generator
that yields the from-ids to read and is sent what HubSpot answered (no I/O of its own); two thin
drivers feed it: :meth:`ReadBack.check` with a blocking read (the sensor, in a worker) and
:meth:`ReadBack.acheck` with an async one (the trigger, in the triggerer). Both give the same
verdicts from the same answers.

A read that fails leaves its chunk, and the ones after it, missing for the next check. Transient
errors (rate limits, 5xx, transport: the hook already retried them within its budget) end the check
with ``last_error`` set; the daily limit and everything else (auth, scopes, validation) propagate.

The trigger's kwargs carry the missing pairs as plain JSON values (:func:`encode_pairs`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import Any

from airflow_hubspot_assoc.api import BATCH_READ_MAX_INPUTS
from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.exceptions import (
    HubSpotDailyLimitError,
    HubSpotRateLimitError,
    HubSpotServerError,
    HubSpotTransportError,
)
from airflow_hubspot_assoc.readback.matching import (
    MISSING_SAMPLE_LIMIT,
    MissingPair,
    check_pairs,
    chunk_by_from_ids,
    describe_missing,
    from_ids_of,
    progress_text,
)

#: Errors the next check may not see again; the hook already retried them within its budget.
#: (``HubSpotDailyLimitError`` is a rate-limit error that waiting within a day cannot cure.)
TRANSIENT_ERRORS = (HubSpotRateLimitError, HubSpotServerError, HubSpotTransportError)

ReadResult = Mapping[str, Sequence[Mapping[str, Any]]]
#: ``read(from_type, to_type, from_ids)``: the hook's ``read_associations``.
Read = Callable[[str, str, list[str]], ReadResult]
#: ``aread(from_type, to_type, from_ids)``: the hook's ``aread_associations``.
ARead = Callable[[str, str, list[str]], Awaitable[ReadResult]]
# One check: yields the from-ids to read, is sent HubSpot's answer.
_Steps = Generator[list[str], ReadResult, None]


class ReadBack:
    """The progress of reading back expected pairs, and the check that advances it.

    :param from_type: object type of the ``from`` records
    :param to_type: object type of the ``to`` records
    :param expected: the pairs that should be visible, iterable again in the same order (re-read
        from ``position`` on each check); None when every pair is already in ``pending``
    :param pending: pairs read back before and still missing (the trigger's, from its kwargs)
    :param confirmed: pairs confirmed before
    :param total: all expected pairs, when known
    :param max_from_ids: distinct from-ids per batch read
    :param max_outstanding: stop reading new pairs while this many are missing (only count them)
    :param absent: wait for the pairs' types to be gone (an archive record) instead of visible
    :param absent_pairs: pairs to wait for to be gone while the others must be visible (a revert)
    """

    def __init__(
        self,
        from_type: str,
        to_type: str,
        expected: Iterable[AssociationPair] | None = None,
        *,
        pending: Iterable[AssociationPair] = (),
        confirmed: int = 0,
        total: int | None = None,
        max_from_ids: int = BATCH_READ_MAX_INPUTS,
        max_outstanding: int | None = None,
        absent: bool = False,
        absent_pairs: Iterable[AssociationPair] = (),
    ) -> None:
        self.absent = absent
        self.absent_pairs = frozenset(absent_pairs)
        self.from_type = from_type
        self.to_type = to_type
        self._expected = expected
        self.pending: list[MissingPair] = [
            MissingPair(pair, absent=absent or pair in self.absent_pairs) for pair in pending
        ]
        self.confirmed = confirmed
        if expected is None and total is None:
            total = confirmed + len(self.pending)
        self.total = total
        #: Expected pairs of the source read back at least once (the rest were not read yet).
        self.position = 0 if expected is not None else (total or 0)
        self.max_from_ids = max_from_ids
        self.max_outstanding = max_outstanding
        #: The transient error that ended the last check early, if any.
        self.last_error: str | None = None

    # -- state ----------------------------------------------------------------------------------------
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

    def missing_text(self, limit: int = MISSING_SAMPLE_LIMIT) -> str:
        """At most ``limit`` missing pairs and why each does not count yet."""
        return describe_missing(self.pending, limit)

    def missing_sample(self, limit: int = MISSING_SAMPLE_LIMIT) -> list[dict[str, Any]]:
        """At most ``limit`` missing pairs as plain values (events)."""
        return [item.as_dict() for item in self.pending[:limit]]

    # -- the drivers ----------------------------------------------------------------------------------
    def check(self, read: Read) -> bool:
        """One check with a blocking read; True when every expected pair is visible."""
        steps = self._steps()
        try:
            from_ids = next(steps)
            while True:
                from_ids = steps.send(read(self.from_type, self.to_type, from_ids))
        except StopIteration:
            pass
        except TRANSIENT_ERRORS as err:
            if isinstance(err, HubSpotDailyLimitError):
                raise
            self.last_error = str(err)
            return False
        finally:
            steps.close()  # a failed read: the generator puts the chunks not judged back
        self.last_error = None
        return self.done

    async def acheck(self, aread: ARead) -> bool:
        """One check with an async read (never blocks the event loop); the same verdicts as :meth:`check`."""
        steps = self._steps()
        try:
            from_ids = next(steps)
            while True:
                from_ids = steps.send(await aread(self.from_type, self.to_type, from_ids))
        except StopIteration:
            pass
        except TRANSIENT_ERRORS as err:
            if isinstance(err, HubSpotDailyLimitError):
                raise
            self.last_error = str(err)
            return False
        finally:
            steps.close()
        self.last_error = None
        return self.done

    # -- the check, without I/O -----------------------------------------------------------------------
    def _steps(self) -> _Steps:
        yield from self._recheck_pending()
        if not self.exhausted:
            yield from self._read_on()

    def _recheck_pending(self) -> _Steps:
        if not self.pending:
            return
        still: list[MissingPair] = []
        remaining = list(
            chunk_by_from_ids(self.pending, lambda item: item.pair.from_id, max_from_ids=self.max_from_ids)
        )
        try:
            while remaining:
                chunk = [item.pair for item in remaining[0]]
                answer = yield from_ids_of(chunk)
                remaining.pop(0)
                result = check_pairs(chunk, answer, absent=self.absent, absent_pairs=self.absent_pairs)
                self.confirmed += len(result.confirmed)
                still.extend(result.missing)
        finally:
            # A failed read leaves its chunk (and the ones after it) pending for the next check.
            self.pending = still + [item for chunk in remaining for item in chunk]

    def _read_on(self) -> _Steps:
        """Read back the source beyond ``position`` while few pairs are outstanding; count the rest."""
        if self._expected is None:
            return
        seen = 0
        chunks = chunk_by_from_ids(self._expected, lambda pair: pair.from_id, max_from_ids=self.max_from_ids)
        for chunk in chunks:
            start, seen = seen, seen + len(chunk)
            if seen <= self.position:
                continue
            if start < self.position:
                chunk = chunk[self.position - start :]
            if self.max_outstanding is not None and len(self.pending) >= self.max_outstanding:
                continue  # only counting: enough is outstanding to wait for
            answer = yield from_ids_of(chunk)
            result = check_pairs(chunk, answer, absent=self.absent, absent_pairs=self.absent_pairs)
            self.confirmed += len(result.confirmed)
            self.pending.extend(result.missing)
            self.position += len(chunk)
        self.total = seen


def encode_pairs(
    pairs: Iterable[AssociationPair],
) -> tuple[list[list[list[str | int]]], list[list[str | int]]]:
    """Encode pairs as plain JSON values for trigger kwargs: distinct type sets, and ``[from, to, set]``."""
    type_sets: list[list[list[str | int]]] = []
    positions: dict[frozenset[AssociationType], int] = {}
    rows: list[list[str | int]] = []
    for pair in pairs:
        position = positions.get(pair.types)
        if position is None:
            position = positions[pair.types] = len(type_sets)
            type_sets.append([[category, type_id] for category, type_id in sorted(pair.types)])
        rows.append([pair.from_id, pair.to_id, position])
    return type_sets, rows


def decode_pairs(
    type_sets: Sequence[Sequence[Sequence[Any]]], rows: Sequence[Sequence[Any]]
) -> list[AssociationPair]:
    """Invert :func:`encode_pairs`."""
    sets = [
        frozenset(AssociationType(str(category), int(type_id)) for category, type_id in item)
        for item in type_sets
    ]
    return [
        AssociationPair(str(from_id), str(to_id), sets[int(position)]) for from_id, to_id, position in rows
    ]
