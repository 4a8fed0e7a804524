"""HubSpotClient: the HubSpot API calls, each one line over the call loop, and one label cache.

Why a client under the hook: the hook is the Airflow adapter (connection, masking, test_connection);
what a call sends, how it is paced, retried and authorised lives here, free of Airflow, so the load,
the sensor and the trigger share one path and tests can drive it with a fake clock.

Requests are built in one place (``_request``) for the sync driver (urllib3 through the session's
pools) and the async one (aiohttp, for the trigger). New endpoints (association archive, labels
create/archive, objects batch read by ``idProperty``, search) belong in the "later" section below:
a path in ``api.py`` and a method that posts through ``call``/``acall``.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_hubspot_assoc import api
from airflow_hubspot_assoc.client.answers import Answer, body_of
from airflow_hubspot_assoc.client.calls import Request, adrive, call_steps, drive
from airflow_hubspot_assoc.client.credentials import Credentials
from airflow_hubspot_assoc.client.limiter import RateLimiter
from airflow_hubspot_assoc.client.reads import ReadCollector, association_types_of
from airflow_hubspot_assoc.client.retry import RetryPolicy, RetrySettings
from airflow_hubspot_assoc.client.stats import CallStats
from airflow_hubspot_assoc.client.transport import (
    AsyncSend,
    SessionTransport,
    SyncSend,
    async_sender,
    sync_sender,
)
from airflow_hubspot_assoc.exceptions import UnknownLabelError

CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ClientSettings:
    """Where and as whom to call: resolved once from the Airflow connection by the hook."""

    base_url: str
    api_version: str
    credentials: Credentials
    static_headers: Mapping[str, str]
    read_timeout: float = DEFAULT_READ_TIMEOUT_S
    portal_id: str | None = None


@dataclass(frozen=True)
class BatchResponse:
    """A batch answer: 200, 201 or 207 have all been seen for the same outcome, so judge ``body``."""

    status_code: int
    body: dict[str, Any]
    retries: int


def inputs_body(inputs: Sequence[Mapping[str, Any]] | api.JsonArray) -> dict[str, Any] | bytes:
    """The payload of a batch write: ``{"inputs": ...}``, encoded already when the inputs are."""
    if isinstance(inputs, api.JsonArray):
        return b'{"inputs":' + inputs + b"}"
    return {"inputs": list(inputs)}


class HubSpotClient:
    """The calls, paced by the app's limiter and retried by one policy, for the sync and async paths.

    :param transport: builds the sync transport on first use (the hook's session and pools).
    :param max_concurrency: the async path's connection pool size (at least 10).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        limiter: RateLimiter,
        transport: Callable[[], SessionTransport],
        stats: CallStats | None = None,
        retry: RetrySettings | None = None,
        max_concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.stats = stats if stats is not None else CallStats()
        self.retry = retry or RetrySettings()
        self.max_concurrency = max_concurrency
        self._transport_factory = transport
        self._send: SyncSend | None = None
        self._clock = clock
        self._sleep = sleep
        self._asleep = asleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._labels: dict[tuple[str, str], list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ the call loop
    def _request(self, method: str, path: str, payload: Any = None) -> Request:
        """Build a request: the one place for URL and body, used by the sync and async paths."""
        if payload is None or isinstance(payload, bytes):
            body = payload  # nothing, or JSON encoded by the caller
        else:
            body = json.dumps(payload, separators=(",", ":")).encode()
        return Request(method, self.settings.base_url + path, body)

    def _policy(self, budget_s: float | None) -> RetryPolicy:
        retry = self.retry
        if budget_s is not None:
            retry = RetrySettings(budget_s, retry.base_delay, retry.max_delay)
        credentials = self.settings.credentials
        return RetryPolicy(
            retry,
            clock=self._clock,
            rng=self._rng,
            stats=self.stats,
            refreshable=credentials.refreshable,
            secrets=credentials.secrets,
        )

    def _sync_send(self) -> SyncSend:
        send = self._send
        if send is None:
            with self._lock:
                if self._send is None:
                    self._send = sync_sender(self._transport_factory())
                send = self._send
        return send

    def call(self, method: str, path: str, payload: Any = None, *, budget_s: float | None = None) -> Answer:
        """Send one request, paced, authorised and retried; the good answer (else an error is raised)."""
        answer, _ = self._call(method, path, payload, budget_s=budget_s)
        return answer

    def _call(
        self, method: str, path: str, payload: Any = None, *, budget_s: float | None = None
    ) -> tuple[Answer, int]:
        steps = call_steps(
            self._request(method, path, payload),
            limiter=self.limiter,
            policy=self._policy(budget_s),
            stats=self.stats,
        )
        credentials = self.settings.credentials
        return drive(
            steps, limiter=self.limiter, credentials=credentials, send=self._sync_send(), sleep=self._sleep
        )

    async def acall(self, send: AsyncSend, method: str, path: str, payload: Any = None) -> Answer:
        """Async ``call`` through ``send`` (see ``async_session``)."""
        steps = call_steps(
            self._request(method, path, payload),
            limiter=self.limiter,
            policy=self._policy(None),
            stats=self.stats,
        )
        credentials = self.settings.credentials
        answer, _ = await adrive(
            steps, limiter=self.limiter, credentials=credentials, send=send, sleep=self._asleep
        )
        return answer

    def async_session(self) -> Any:
        """An aiohttp session for async calls (``async with``; its ``sender`` goes to ``acall``)."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT_S, sock_read=self.settings.read_timeout)
        connector = aiohttp.TCPConnector(limit=max(self.max_concurrency, 10))
        # trust_env: proxies from the environment, as requests does on the sync path.
        return aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=True)

    def _paths(self, from_type: str, to_type: str) -> api.ApiPaths:
        return api.association_paths(self.settings.api_version, from_type, to_type)

    # ------------------------------------------------------------------ associations
    def create_associations(
        self, from_type: str, to_type: str, inputs: Sequence[Mapping[str, Any]] | api.JsonArray
    ) -> BatchResponse:
        """Create labelled associations (``batch/create``); ``inputs`` are in HubSpot's shape, as
        objects or as an already encoded JSON array."""
        path = self._paths(from_type, to_type).batch_create
        answer, retries = self._call("POST", path, inputs_body(inputs))
        return BatchResponse(answer.status, body_of(answer), retries)

    def create_default_associations(
        self, from_type: str, to_type: str, inputs: Sequence[Mapping[str, Any]] | api.JsonArray
    ) -> BatchResponse:
        """Create default (unlabelled) associations (``batch/associate/default``); ``inputs`` as above."""
        path = self._paths(from_type, to_type).batch_associate_default
        answer, retries = self._call("POST", path, inputs_body(inputs))
        return BatchResponse(answer.status, body_of(answer), retries)

    def read_associations(
        self, from_type: str, to_type: str, from_ids: Iterable[str]
    ) -> dict[str, list[dict]]:
        """Read the associations of ``from_ids`` (chunks of 1,000, every page); missing ids map to []."""
        return self.read_associations_counted(from_type, to_type, from_ids)[0]

    def read_associations_counted(
        self, from_type: str, to_type: str, from_ids: Iterable[str]
    ) -> tuple[dict[str, list[dict]], int]:
        """``read_associations`` and how many requests it took (a ledger reports its reads)."""
        path = self._paths(from_type, to_type).batch_read
        collector = ReadCollector(from_ids)
        requests = 0
        while (payload := collector.next_payload()) is not None:
            collector.absorb(body_of(self.call("POST", path, payload)))
            requests += 1
        return collector.result, requests

    async def aread_associations(
        self, from_type: str, to_type: str, from_ids: Iterable[str]
    ) -> dict[str, list[dict]]:
        """Async ``read_associations`` (aiohttp), for triggers."""
        path = self._paths(from_type, to_type).batch_read
        collector = ReadCollector(from_ids)
        async with self.async_session() as session:
            send = async_sender(session, self.settings.static_headers)
            while (payload := collector.next_payload()) is not None:
                collector.absorb(body_of(await self.acall(send, "POST", path, payload)))
        return collector.result

    # ------------------------------------------------------------------ association types (labels)
    def read_association_types(
        self, from_type: str, to_type: str, *, budget_s: float | None = None
    ) -> list[dict[str, Any]]:
        """Ask HubSpot for the association types of ``from_type -> to_type`` (one request, no cache):
        ``[{"category", "typeId", "label"}]`` (``label`` None for unlabelled types)."""
        answer = self.call("GET", self._paths(from_type, to_type).labels, budget_s=budget_s)
        types = association_types_of(body_of(answer))
        with self._lock:
            self._labels[(from_type, to_type)] = types
        return types

    def cached_association_types(self, from_type: str, to_type: str) -> list[dict[str, Any]]:
        """``read_association_types``, asked once per client and object pair."""
        with self._lock:
            known = self._labels.get((from_type, to_type))
        return known if known is not None else self.read_association_types(from_type, to_type)

    def resolve_label(self, from_type: str, to_type: str, label: str) -> tuple[str, int]:
        """Find a label by name (case-insensitive): ``(category, typeId)``; from the cache, asking
        HubSpot once more before giving up (the label may have been created since)."""
        wanted = label.strip().casefold()
        with self._lock:
            known = self._labels.get((from_type, to_type))
        for fresh in (known is None, True):
            if known is None or fresh:
                known = self.read_association_types(from_type, to_type)
            for entry in known:
                name = entry.get("label")
                if isinstance(name, str) and name.strip().casefold() == wanted:
                    return str(entry["category"]), int(entry["typeId"])
            if fresh:
                break
        assert known is not None
        existing = sorted({e["label"] for e in known if isinstance(e.get("label"), str)})
        raise UnknownLabelError(label, from_type, to_type, existing)

    # ------------------------------------------------------------------ later
    # Objects batch read by idProperty and search go here too, each a method that builds its path
    # with ``api`` and sends through ``call`` (or ``acall``).
    def archive_associations(
        self, from_type: str, to_type: str, inputs: Sequence[Mapping[str, Any]] | api.JsonArray
    ) -> BatchResponse:
        """Remove every association between each pair (``batch/archive``); ``inputs`` are
        ``{"from": {"id"}, "to": [{"id"}, ...]}``. v4 answers 204 without a body (``body`` is then
        ``{}``); dated versions answer 200 with ``errors`` naming the inputs not applied."""
        path = self._paths(from_type, to_type).batch_archive
        answer, retries = self._call("POST", path, inputs_body(inputs))
        return BatchResponse(answer.status, body_of(answer), retries)

    def archive_association_labels(
        self, from_type: str, to_type: str, inputs: Sequence[Mapping[str, Any]] | api.JsonArray
    ) -> BatchResponse:
        """Remove only the given types between each pair (``batch/labels/archive``); ``inputs`` in
        batch create's shape. Archiving the unlabeled type cascades to every label of the pair."""
        path = self._paths(from_type, to_type).batch_labels_archive
        answer, retries = self._call("POST", path, inputs_body(inputs))
        return BatchResponse(answer.status, body_of(answer), retries)

    def create_label(
        self, from_type: str, to_type: str, label: str, *, name: str, inverse_label: str | None = None
    ) -> tuple[str, int]:
        """Create a USER_DEFINED label (and its inverse) for ``from_type -> to_type``: its
        ``(category, typeId)``. The cached types of the pair are dropped, so the next resolve sees it."""
        payload: dict[str, Any] = {"label": label, "name": name}
        if inverse_label:
            payload["inverseLabel"] = inverse_label
        body = body_of(self.call("POST", self._paths(from_type, to_type).labels, payload))
        with self._lock:
            self._labels.pop((from_type, to_type), None)
            self._labels.pop((to_type, from_type), None)
        created = association_types_of(body)
        wanted = label.strip().casefold()
        for entry in created:
            if isinstance(entry.get("label"), str) and entry["label"].strip().casefold() == wanted:
                return str(entry["category"]), int(entry["typeId"])
        if created:  # the first result is the new type (``from -> to``), the second its inverse
            return str(created[0]["category"]), int(created[0]["typeId"])
        return self.resolve_label(from_type, to_type, label)
