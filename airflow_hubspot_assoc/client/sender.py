"""The narrow interface a load sends through: one object per load, built by the operator.

Why: the load must not reach back into the hook (for its pool size, its in-flight cap per batch or its
counters). It drives; this object answers three questions: send (create) or archive this batch, how
many may be in flight (now, and at most ever, to size the pool), and what did sending cost so far.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_hubspot_assoc import api
from airflow_hubspot_assoc.client.headers import WINDOW_BURST_MAX
from airflow_hubspot_assoc.client.hubspot import BatchResponse, HubSpotClient


@dataclass(frozen=True, slots=True)
class Capacity:
    """Requests that may be in flight now, and the most there can ever be (threads worth starting)."""

    now: int
    most: int


@dataclass(frozen=True, slots=True)
class SendCounters:
    """What sending has cost so far: requests made, retries, and 429s seen."""

    requests: int
    retries: int
    throttled: int


def most_in_flight(max_concurrency: int, max_burst: int | None) -> int:
    """The most requests a client can have in flight at once: the concurrency cap or the burst cap."""
    return max(max_concurrency, WINDOW_BURST_MAX if max_burst is None else max_burst)


class AssociationSender:
    """Sends one load's batches for one object pair through a client.

    The app's limiter is shared by every hook of the process (one per app), and its caps rise to the
    largest any of them asked for; this load's own caps still hold: ``max_concurrency`` while no
    window is announced, its burst cap while one is.
    """

    def __init__(
        self,
        client: HubSpotClient,
        from_type: str,
        to_type: str,
        *,
        max_concurrency: int,
        max_burst: int | None,
    ) -> None:
        self._client = client
        self.from_type = from_type
        self.to_type = to_type
        self._concurrency = max_concurrency
        self._most = most_in_flight(max_concurrency, max_burst)

    def send(self, inputs: api.JsonArray, *, default: bool) -> BatchResponse:
        """Create a batch's associations: default (unlabelled) ones, or with the types in ``inputs``."""
        client = self._client
        create = client.create_default_associations if default else client.create_associations
        return create(self.from_type, self.to_type, inputs)

    def archive(self, inputs: api.JsonArray, *, all_types: bool) -> BatchResponse:
        """Archive a batch: every association between each pair (``all_types``: ``inputs`` in
        ``batch/archive``'s shape), or only the types in ``inputs`` (``batch/labels/archive``)."""
        client = self._client
        remove = client.archive_associations if all_types else client.archive_association_labels
        return remove(self.from_type, self.to_type, inputs)

    def capacity(self) -> Capacity:
        """How many may be in flight now (the window's room or the concurrency cap) and at most."""
        limiter = self._client.limiter
        own = self._most if limiter.window_announced() else self._concurrency
        return Capacity(min(limiter.in_flight_cap(), own), self._most)

    def counters(self) -> SendCounters:
        """Requests, retries and 429s of the client so far."""
        stats = self._client.stats.snapshot()
        return SendCounters(stats["requests"], stats["retries"], stats["throttled"])

    def association_types(self) -> list[dict[str, Any]]:
        """The object pair's association types (cached): checked before the first write."""
        return self._client.cached_association_types(self.from_type, self.to_type)

    def read_associations(self, from_ids: Iterable[str]) -> tuple[dict[str, list[dict[str, Any]]], int]:
        """The associations of ``from_ids`` (1,000 a request, pages followed) and the requests made."""
        return self._client.read_associations_counted(self.from_type, self.to_type, from_ids)
