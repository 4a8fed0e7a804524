"""Reads that turn business keys into record ids: property definitions, batch read by
``idProperty``, and search, each one request over ``HubSpotClient.call``.

Why a module of its own: these calls serve key resolution only, and keeping their paths and bodies
here leaves ``hubspot.py`` and ``api.py`` to the association endpoints. Search has a separate, lower
rate limit than the 10-second window (HubSpot documents five requests a second per token, and its
answers carry no rate-limit headers), so searches are spaced here, on top of the app's limiter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc import api
from airflow_hubspot_assoc.client.answers import body_of

if TYPE_CHECKING:
    from airflow_hubspot_assoc.client.hubspot import HubSpotClient

#: Inputs per objects batch read (HubSpot's cap, lower than the associations' 1,000).
OBJECTS_READ_MAX_INPUTS = 100
#: Results per search page, values per ``IN`` filter and filter groups per search (HubSpot's caps;
#: HubSpot's 2024 changelog gives 5 filter groups, the lower of the figures published).
SEARCH_PAGE_MAX = 200
SEARCH_IN_MAX_VALUES = 100
SEARCH_MAX_FILTER_GROUPS = 5
#: Searches per second per token; spaced a little wider so that clock jitter never makes a sixth.
SEARCH_PER_SECOND = 5
SEARCH_SPACING_S = 1.0 / SEARCH_PER_SECOND * 1.1


@dataclass(frozen=True, slots=True)
class ObjectPaths:
    """The objects and properties endpoints of one API version for one object type."""

    batch_read: str
    search: str
    properties: str


def object_paths(api_version: str, object_type: str) -> ObjectPaths:
    """``/crm/v3/...`` for v4 connections, ``/crm/objects/{version}/...`` for dated versions."""
    version = api.validate_api_version(api_version)
    kind = api.validate_object_type(object_type)
    if version == api.DEFAULT_API_VERSION:
        objects, properties = f"/crm/v3/objects/{kind}", f"/crm/v3/properties/{kind}"
    else:
        objects, properties = f"/crm/objects/{version}/{kind}", f"/crm/properties/{version}/{kind}"
    return ObjectPaths(f"{objects}/batch/read", f"{objects}/search", properties)


@dataclass(frozen=True)
class SearchPage:
    """One search answer: ``(record id, property value)`` of each result, and the next cursor."""

    matches: list[tuple[str, str]]
    after: str | None


class KeyLookup:
    """The reads of key resolution for one client; counts its requests for the record.

    :param in_flight: how many reads may be in flight now (the load's sender capacity: the app
        limiter's room while a window is announced, else ``max_concurrency``); read before each
        read is started, so resolution uses the shared window as batch creates do.
    :param most: the most reads ever in flight (threads worth starting); 1 reads one at a time.
    :param clock: and ``sleep`` space searches (injected in tests).
    """

    def __init__(
        self,
        client: HubSpotClient,
        *,
        in_flight: Callable[[], int] = lambda: 1,
        most: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.requests = 0
        self._in_flight = in_flight
        self._most = max(1, most)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_search = float("-inf")

    def _paths(self, object_type: str) -> ObjectPaths:
        return object_paths(self.client.settings.api_version, object_type)

    def property_definition(self, object_type: str, name: str) -> dict[str, Any]:
        """The property's definition (``hasUniqueValue``, ``type``, ...); HubSpot's 404 is raised."""
        path = f"{self._paths(object_type).properties}/{name}"
        self._count()
        return body_of(self.client.call("GET", path))

    def read_by_property(self, object_type: str, name: str, values: Sequence[str]) -> list[tuple[str, str]]:
        """Batch read up to 100 records by ``idProperty``: ``(record id, value)`` of each found.

        Results echo the record id and the requested properties, not the key sent, so the property
        is asked for and its value returned; keys not found are simply absent (HubSpot lists them in
        ``errors``, answered 207 or 200 depending on the version).
        """
        if len(values) > OBJECTS_READ_MAX_INPUTS:
            raise ValueError(f"at most {OBJECTS_READ_MAX_INPUTS} values a read, got {len(values)}")
        payload = {
            "idProperty": name,
            "inputs": [{"id": value} for value in values],
            "properties": [name],
            "propertiesWithHistory": [],
        }
        self._count()
        body = body_of(self.client.call("POST", self._paths(object_type).batch_read, payload))
        return _matches(body, name)

    def read_many(
        self, object_type: str, name: str, chunks: Sequence[Sequence[str]]
    ) -> Iterator[list[tuple[str, str]]]:
        """``read_by_property`` of every chunk, several in flight; each chunk's matches as it ends.

        One read at a time would leave the window idle: 1,100 reads of 150 ms each take 165 s,
        where R = 100 per 10 s lets them go in 11 windows. Every read still goes through the
        client's call loop (the app's limiter, retries), so the pacing is the limiter's; this only
        keeps as many in flight as it allows (``in_flight``). The first failure is raised once the
        reads in flight have ended; reads not started yet are dropped.
        """
        if self._most == 1 or len(chunks) <= 1:
            for chunk in chunks:
                yield self.read_by_property(object_type, name, chunk)
            return
        workers = min(self._most, len(chunks))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hubspot-keys") as pool:
            pending: set[Future[list[tuple[str, str]]]] = set()
            position = 0
            try:
                while position < len(chunks) or pending:
                    room = max(1, min(self._in_flight(), workers))
                    while position < len(chunks) and len(pending) < room:
                        chunk = chunks[position]
                        pending.add(pool.submit(self.read_by_property, object_type, name, chunk))
                        position += 1
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            finally:
                for future in pending:
                    future.cancel()

    def search_in(self, object_type: str, name: str, values: Sequence[str], after: str = "") -> SearchPage:
        """One page of the records whose ``name`` is one of ``values`` (at most 500: one ``IN`` filter
        of 100 values in each of up to 5 filter groups, which search ORs)."""
        step = SEARCH_IN_MAX_VALUES
        groups = [
            {"filters": [{"propertyName": name, "operator": "IN", "values": list(values[i : i + step])}]}
            for i in range(0, len(values), step)
        ]
        if not groups or len(groups) > SEARCH_MAX_FILTER_GROUPS:
            most = SEARCH_IN_MAX_VALUES * SEARCH_MAX_FILTER_GROUPS
            raise ValueError(f"1 to {most} values a search, got {len(values)}")
        payload = {
            "filterGroups": groups,
            "properties": [name],
            "limit": SEARCH_PAGE_MAX,
            "after": after,
            "sorts": [],
        }
        self._space_search()
        self._count()
        body = body_of(self.client.call("POST", self._paths(object_type).search, payload))
        paging = body.get("paging")
        following = paging.get("next") if isinstance(paging, Mapping) else None
        cursor = following.get("after") if isinstance(following, Mapping) else None
        return SearchPage(_matches(body, name), str(cursor) if cursor not in (None, "") else None)

    def _count(self) -> None:
        with self._lock:
            self.requests += 1

    def _space_search(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next_search)
            self._next_search = start + SEARCH_SPACING_S
        if start > now:
            self._sleep(start - now)


def _matches(body: Mapping[str, Any], name: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    results = body.get("results")
    for result in results if isinstance(results, list) else ():
        if not isinstance(result, Mapping):
            continue
        properties = result.get("properties")
        value = properties.get(name) if isinstance(properties, Mapping) else None
        record_id = result.get("id")
        if isinstance(value, str) and record_id is not None:
            found.append((str(record_id), value))
    return found
