"""Segments of a load's send pass, and the batches in flight.

A segment is the rows read until a batch fills, with the batches they made, their duplicates and
their invalid rows (see ``load.py``). Batches go out on worker threads and are answered out of order;
the load takes finished ones off :class:`InFlight` and commits a segment once every batch of it and of
every segment before it is answered.
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from dataclasses import dataclass, field

from airflow_hubspot_assoc.batches import BatchOutcome, Failure
from airflow_hubspot_assoc.pairs import InvalidRow


@dataclass
class Segment:
    """Consecutive rows up to ``end_row`` (exclusive), with what became of them so far."""

    end_row: int
    batches: int
    duplicates: int
    invalid: list[InvalidRow]
    outcomes: list[BatchOutcome] = field(default_factory=list)
    answered: int = 0
    #: Pairs whose business key did not resolve (issue 13): failed before any batch.
    unresolved: list[Failure] = field(default_factory=list)

    @property
    def open_batches(self) -> int:
        """Batches of this segment still waiting for an answer."""
        return self.batches - self.answered


class InFlight:
    """Sent batches not yet taken in (future -> segment number), and a queue of the finished ones.

    Why a queue: ``concurrent.futures.wait`` scans every future and builds a waiter on each call,
    and the load polls once per batch; taking finished futures off a queue costs next to nothing.
    """

    def __init__(self) -> None:
        self.segments: dict[Future[list[BatchOutcome]], int] = {}
        self._finished: queue.SimpleQueue[Future[list[BatchOutcome]]] = queue.SimpleQueue()

    def __len__(self) -> int:
        return len(self.segments)

    def add(self, future: Future[list[BatchOutcome]], segment: int) -> None:
        self.segments[future] = segment
        future.add_done_callback(self._finished.put)

    def take_finished(self, *, block: bool) -> list[tuple[Future[list[BatchOutcome]], int]]:
        """The finished ones with their segments: all there are, after waiting for one if ``block``."""
        taken: list[tuple[Future[list[BatchOutcome]], int]] = []
        if not self.segments:
            return taken
        try:
            future = self._finished.get(block=block)
            while True:
                taken.append((future, self.segments.pop(future)))
                future = self._finished.get_nowait()
        except queue.Empty:
            return taken
