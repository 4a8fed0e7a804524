"""HubSpotHook: the one place that talks to HubSpot's associations API.

Why a hook of its own rather than HttpHook as is: HubSpot needs bearer tokens that may expire
(OAuth), a process-wide rate limiter, retries decided by status and HubSpot's ``category``, an async
read path for triggers, and connection extras (client secret, refresh token, API version) that must
never travel as HTTP headers, which HttpHook would do with every extra.

Requests are built in one place (``_prepare``) for the sync path (the pools and TLS settings of a
``requests`` session, see ``transport.py``) and the async path (``aiohttp``, for the trigger); both
follow the same retry policy
(``_RetryPolicy``): 429, 500/502/503/504, connection errors and timeouts are retried with bounded
exponential backoff and full jitter within ``retry_budget_seconds``; everything else fails at once
with an error from ``airflow_hubspot_assoc.exceptions`` that carries HubSpot's status, category,
message and correlationId, and never a header or a token.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec
import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from airflow_hubspot_assoc import __version__, api
from airflow_hubspot_assoc.auth import (
    EXPIRED_AUTHENTICATION,
    Credentials,
    credentials_from_connection,
    default_masker,
    scrub,
)
from airflow_hubspot_assoc.exceptions import (
    HubSpotApiError,
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotDailyLimitError,
    HubSpotError,
    HubSpotMissingScopesError,
    HubSpotRateLimitError,
    HubSpotServerError,
    HubSpotTlsError,
    HubSpotTransportError,
    HubSpotValidationError,
    UnknownLabelError,
)
from airflow_hubspot_assoc.rate_limit import WINDOW_BURST_MAX, RateLimiter, Ticket, limiter_for
from airflow_hubspot_assoc.transport import Answer as _Answer
from airflow_hubspot_assoc.transport import SessionTransport

if TYPE_CHECKING:
    import aiohttp

CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 30.0
RETRYABLE_5XX = frozenset({500, 502, 503, 504})
_USER_AGENT = f"airflow-hubspot-assoc/{__version__}"
_ERROR_FIELDS = (
    "status",
    "message",
    "category",
    "subCategory",
    "correlationId",
    "context",
    "errors",
    "errorType",
    "policyName",
)
_TEST_CONNECTION_BUDGET_S = 15.0
_REFRESH = -1.0  # the retry policy's "refresh the token, then retry at once"
_RETRYABLE_AUTH_ERRORS = (HubSpotServerError, HubSpotRateLimitError, HubSpotTransportError)
_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class BatchResponse:
    """A batch answer: 200, 201 or 207 have all been seen for the same outcome, so judge ``body``."""

    status_code: int
    body: dict[str, Any]
    retries: int


class HookStats:
    """Counters of one hook, safe to update from the operator's worker threads."""

    _FIELDS = ("requests", "retries", "throttled", "refreshes", "server_errors", "transport_errors")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.throttled = 0
        self.refreshes = 0
        self.server_errors = 0
        self.transport_errors = 0

    def add(self, **increments: int) -> None:
        """Add to counters by name, atomically."""
        with self._lock:
            for name, value in increments.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        """A consistent copy of every counter."""
        with self._lock:
            return {name: getattr(self, name) for name in self._FIELDS}

    def __repr__(self) -> str:
        return f"HookStats({self.snapshot()})"


@dataclass(frozen=True)
class _Settings:
    """Everything read from the connection, resolved once per hook."""

    base_url: str
    api_version: str
    read_timeout: float
    portal_id: str | None
    credentials: Credentials
    limiter: RateLimiter
    static_headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Request:
    """A request ready to send (the Authorization header is added per attempt)."""

    method: str
    url: str
    body: bytes | None


class _BearerAuth(AuthBase):
    """Adds the current token to requests built outside the hook's own path (``HttpHook.run``)."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if "Authorization" not in request.headers:
            request.headers["Authorization"] = self._credentials.authorization()
        return request


def _is_tls_error(err: BaseException) -> bool:
    """Whether a transport error is a TLS failure (sync requests or async aiohttp)."""
    import ssl

    import aiohttp

    return isinstance(err, requests.exceptions.SSLError | ssl.SSLError | aiohttp.ClientSSLError)


def _inputs_body(inputs: Sequence[Mapping[str, Any]] | api.JsonArray) -> dict[str, Any] | bytes:
    """The payload of a batch write: ``{"inputs": ...}``, encoded already when the inputs are."""
    if isinstance(inputs, api.JsonArray):
        return b'{"inputs":' + inputs + b"}"
    return {"inputs": list(inputs)}


def _parse_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object leniently (HubSpot's 429 body, proxies' HTML pages, empty bodies)."""
    if not raw:
        return {}
    try:
        # msgspec (an Airflow dependency) parses a batch answer about three times faster than json.
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _missing_scopes(payload: Mapping[str, Any]) -> list[str]:
    """Scopes named anywhere HubSpot puts them: ``context`` or ``errors[].context`` keys about scopes."""
    found: list[str] = []
    contexts = [payload.get("context")]
    errors = payload.get("errors")
    if isinstance(errors, list):
        contexts.extend(e.get("context") for e in errors if isinstance(e, dict))
    for context in contexts:
        if not isinstance(context, dict):
            continue
        for key, values in context.items():
            if "scope" in str(key).lower() and isinstance(values, list):
                found.extend(str(v) for v in values if str(v) not in found)
    return found


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is not used by HubSpot and is ignored)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class _RetryPolicy:
    """One call's retry decisions, shared by the sync and async paths (no I/O here).

    ``on_answer``/``on_transport_error`` return None when the call is done (the answer is good),
    ``0.0``-or-more seconds to wait before the next attempt, or raise the final error.
    """

    def __init__(self, hook: HubSpotHook, credentials: Credentials, budget_s: float) -> None:
        self._hook = hook
        self._credentials = credentials
        self._clock = hook._clock
        self.deadline = self._clock() + budget_s
        self.retries = 0
        self.refreshed = False
        self._failures = 0
        self._exhausted: Callable[[], HubSpotError] | None = None
        self._cause: BaseException | None = None

    def _backoff(self, base: float | None = None) -> float:
        hook = self._hook
        ceiling = min(
            hook.retry_max_delay, (hook.retry_base_delay if base is None else base) * 2**self._failures
        )
        self._failures += 1
        return hook._random.uniform(0, ceiling)

    def _schedule(
        self, delay: float, exhausted: Callable[[], HubSpotError], cause: BaseException | None
    ) -> float:
        self._exhausted, self._cause = exhausted, cause
        if self._clock() + delay > self.deadline:
            raise exhausted() from cause
        self.retries += 1
        self._hook.stats.add(retries=1)
        return delay

    def permit_timeout(self) -> float | None:
        """While retrying, waiting for the rate limiter also counts against the budget."""
        if self._exhausted is None:
            return None
        return max(0.0, self.deadline - self._clock())

    def give_up(self) -> NoReturn:
        """The limiter cannot let the next retry out before the budget ends: raise the last failure."""
        assert self._exhausted is not None
        raise self._exhausted() from self._cause

    def on_transport_error(self, err: BaseException, url: str) -> float:
        """A connection error or timeout: retry within the budget, then HubSpotTransportError.

        A TLS failure (bad or untrusted certificate) does not heal on retry: it fails at once.
        """
        self._hook.stats.add(transport_errors=1)
        if _is_tls_error(err):
            raise HubSpotTlsError(
                f"TLS verification of {url.split('://', 1)[-1].split('/', 1)[0]} failed: {err}. "
                "For a private CA, set REQUESTS_CA_BUNDLE to its bundle."
            ) from err
        kind = "timed out" if isinstance(err, (requests.Timeout, asyncio.TimeoutError)) else "failed"
        path = url.split("://", 1)[-1].split("/", 1)[-1]

        def exhausted() -> HubSpotError:
            return HubSpotTransportError(
                f"Request to HubSpot (/{path}) {kind} ({type(err).__name__}) and kept failing until the "
                f"retry budget ran out after {self.retries} retries"
            )

        return self._schedule(self._backoff(), exhausted, err)

    def on_auth_refresh_error(self, err: HubSpotError) -> float:
        """The token endpoint failed for a reason retrying may cure (5xx, 429, no connection)."""
        if isinstance(err, HubSpotTlsError):
            raise err
        return self._schedule(self._backoff(), lambda: err, err.__cause__)

    def on_answer(self, answer: _Answer) -> float | None:
        """Judge an HTTP answer; see the class docs."""
        status = answer.status
        if 200 <= status < 300:
            return None
        payload = _parse_object(answer.content)
        category = _text(payload.get("category"))
        secrets = self._credentials.secrets()
        message = scrub(_text(payload.get("message")) or f"HTTP {status}", secrets)
        details: dict[str, Any] = {
            "status": status,
            "category": category,
            "correlation_id": _text(payload.get("correlationId")),
            "context": payload.get("context") if isinstance(payload.get("context"), dict) else None,
            "body": {k: payload[k] for k in _ERROR_FIELDS if k in payload},
        }
        if status == 429:
            self._hook.stats.add(throttled=1)
            policy = _text(payload.get("policyName"))
            if policy == "DAILY":
                raise HubSpotDailyLimitError(message, **{**details, "category": category or policy})
            retry_after = _retry_after_seconds(answer.headers)
            delay = retry_after if retry_after is not None else self._backoff(self._hook.retry_base_delay / 4)
            return self._schedule(
                delay,
                lambda: HubSpotRateLimitError(
                    f"{message} (still throttled when the retry budget ran out after {self.retries} retries)",
                    **{**details, "category": category or policy},
                ),
                None,
            )
        if status in RETRYABLE_5XX:
            self._hook.stats.add(server_errors=1)
            return self._schedule(
                self._backoff(),
                lambda: HubSpotServerError(
                    f"{message} (kept failing until the retry budget ran out after {self.retries} retries)",
                    **details,
                ),
                None,
            )
        if status == 401:
            if category == EXPIRED_AUTHENTICATION and self._credentials.refreshable and not self.refreshed:
                self.refreshed = True
                self.retries += 1
                self._hook.stats.add(retries=1)
                return _REFRESH
            raise HubSpotAuthError(message, **details)
        if status == 403:
            if category == "MISSING_SCOPES":
                raise HubSpotMissingScopesError(message, missing_scopes=_missing_scopes(payload), **details)
            raise HubSpotAuthError(message, **details)
        if 400 <= status < 500:
            raise HubSpotValidationError(message, **details)
        if status >= 500:
            raise HubSpotServerError(message, **details)
        raise HubSpotApiError(f"Unexpected HTTP {status} from HubSpot: {message}", **details)


class _ReadCollector:
    """Batch read bookkeeping shared by the sync and async paths: what to ask next, what came back."""

    def __init__(self, from_ids: Iterable[str], chunk: int = api.BATCH_READ_MAX_INPUTS) -> None:
        ids = list(dict.fromkeys(str(i) for i in from_ids))
        self.result: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        self._queue: list[dict[str, str]] = [{"id": i} for i in ids]
        self._chunk = chunk

    def next_payload(self) -> dict[str, Any] | None:
        """The next request's payload, or None when everything (every page) has been read."""
        if not self._queue:
            return None
        inputs, self._queue = self._queue[: self._chunk], self._queue[self._chunk :]
        return {"inputs": inputs}

    def absorb(self, body: Mapping[str, Any]) -> None:
        """Take one answer in: its associations, and the next pages to ask for."""
        results = body.get("results")
        if not isinstance(results, list):
            return
        for item in results:
            if not isinstance(item, dict):
                continue
            source = item.get("from")
            from_id = str(source.get("id")) if isinstance(source, dict) else None
            if from_id is None:
                continue
            bucket = self.result.setdefault(from_id, [])
            for target in item.get("to") or ():
                if not isinstance(target, dict) or target.get("toObjectId") is None:
                    continue
                bucket.append(
                    {
                        "toObjectId": str(target["toObjectId"]),
                        "associationTypes": [
                            {
                                "category": t.get("category"),
                                "typeId": t.get("typeId"),
                                "label": t.get("label"),
                            }
                            for t in target.get("associationTypes") or ()
                            if isinstance(t, dict)
                        ],
                    }
                )
            paging = item.get("paging")
            after = None
            if isinstance(paging, dict) and isinstance(paging.get("next"), dict):
                after = paging["next"].get("after")
            if after:
                self._queue.append({"id": from_id, "after": str(after)})


class HubSpotHook(HttpHook):
    """Talk to HubSpot's CRM associations API with retries, rate limiting and token refresh.

    :param hubspot_conn_id: the ``hubspot`` connection: host (default ``https://api.hubapi.com``),
        password = private-app token, or extras ``client_id``/``client_secret``/``refresh_token`` for
        OAuth; extras ``api_version`` (``v4`` or ``YYYY-03``/``YYYY-09``), ``timeout`` (read timeout in
        seconds) and ``portal_id``.
    :param max_concurrency: requests in flight at most while HubSpot announces no rate limit.
    :param max_burst: requests in flight at most while HubSpot announces a rolling window (never below
        ``max_concurrency``); None: as many as the window lets us send, at most 250. See ``rate_limit``.
    :param retry_budget_seconds: how long one call may keep retrying before it gives up.
    """

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    conn_type = "hubspot"
    hook_name = "HubSpot"
    default_host = api.DEFAULT_HOST

    retry_base_delay = 0.5
    retry_max_delay = 30.0

    def __init__(
        self,
        hubspot_conn_id: str = default_conn_name,
        *,
        max_concurrency: int = 8,
        max_burst: int | None = None,
        retry_budget_seconds: float = 300.0,
    ) -> None:
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
        if max_burst is not None and (not isinstance(max_burst, int) or max_burst < 1):
            raise ValueError(f"max_burst must be a positive integer or None, got {max_burst!r}")
        if retry_budget_seconds < 0:
            raise ValueError(f"retry_budget_seconds cannot be negative, got {retry_budget_seconds!r}")
        super().__init__(method="POST", http_conn_id=hubspot_conn_id, tcp_keep_alive=False)
        self.hubspot_conn_id = hubspot_conn_id
        self.max_concurrency = max_concurrency
        self.max_burst = max_burst
        self.retry_budget_seconds = float(retry_budget_seconds)
        self.stats = HookStats()
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep
        self._asleep: Callable[[float], Any] = asyncio.sleep
        self._random = random.Random()
        self._init_lock = threading.Lock()
        self._settings_cache: _Settings | None = None
        self._session: requests.Session | None = None
        self._labels: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._transport: SessionTransport | None = None
        self._labels_lock = threading.Lock()

    # ------------------------------------------------------------------ connection and session
    @property
    def max_in_flight_ever(self) -> int:
        """The most requests this hook can have in flight at once (threads worth starting for it)."""
        burst = WINDOW_BURST_MAX if self.max_burst is None else self.max_burst
        return max(self.max_concurrency, burst)

    def in_flight_cap(self) -> int:
        """How many requests may be in flight now: the window's room, or the concurrency cap."""
        return min(self._settings().limiter.in_flight_cap(), self.max_in_flight_ever)

    @property
    def api_version(self) -> str:
        """The connection's API version (``v4`` unless the extra says otherwise)."""
        return self._settings().api_version

    @property
    def portal_id(self) -> str | None:
        """The connection's portal (hub) id, if set."""
        return self._settings().portal_id

    @property
    def limiter(self) -> RateLimiter:
        """This process's rate limiter for the connection's app (shared with every other hook)."""
        return self._settings().limiter

    def _settings(self) -> _Settings:
        settings = self._settings_cache
        if settings is not None:
            return settings
        with self._init_lock:
            if self._settings_cache is None:
                conn = self.get_connection(self.hubspot_conn_id)
                self._settings_cache = self._build_settings(conn, conn.extra_dejson, default_masker)
                self.base_url = self._settings_cache.base_url
                self._base_url_initialized = True
            return self._settings_cache

    async def _asettings(self) -> _Settings:
        settings = self._settings_cache
        if settings is not None:
            return settings
        from airflow_hubspot_assoc.version_compat import amask_secret

        conn = await self.aget_connection(self.hubspot_conn_id)
        extra = await conn.aextra_dejson() if hasattr(conn, "aextra_dejson") else conn.extra_dejson
        collected: list[str] = []
        built = self._build_settings(conn, extra, collected.append)
        # Masking in the event loop must go through the async API; later refreshes run in a worker
        # thread, where the sync one is safe.
        for secret in collected:
            await amask_secret(secret)
        built.credentials.masker = default_masker
        with self._init_lock:
            if self._settings_cache is None:
                self._settings_cache = built
            return self._settings_cache

    def _build_settings(
        self, conn: Any, extra: Mapping[str, Any], masker: Callable[[str], None]
    ) -> _Settings:
        """Turn a Connection into validated settings (pure apart from the masker)."""
        if conn.password:
            masker(conn.password)
        for key in ("verify", "verify_ssl", "ssl_verify", "insecure"):
            if key in extra:
                raise HubSpotConfigError(
                    f"The HubSpot connection's {key!r} extra is not supported: TLS verification always "
                    "stays on. For a private CA (a corporate proxy), set REQUESTS_CA_BUNDLE to its bundle."
                )
        base_url = api.normalise_base_url(conn.host or self.default_host, conn.port)
        version = api.validate_api_version(extra.get("api_version"))
        raw_timeout = extra.get("timeout")
        if raw_timeout in (None, ""):
            read_timeout = DEFAULT_READ_TIMEOUT_S
        else:
            try:
                read_timeout = float(raw_timeout)
            except (TypeError, ValueError):
                read_timeout = -1.0
            if not read_timeout > 0:
                raise HubSpotConfigError(
                    "The HubSpot connection's timeout extra must be a positive number of seconds, "
                    f"got {raw_timeout!r}"
                )
        credentials = credentials_from_connection(
            base_url=base_url, password=conn.password, extra=dict(extra), masker=masker
        )
        credentials.on_refresh = self._count_refresh
        portal = extra.get("portal_id")
        return _Settings(
            base_url=base_url,
            api_version=version,
            read_timeout=read_timeout,
            portal_id=str(portal) if portal not in (None, "") else None,
            credentials=credentials,
            limiter=limiter_for(
                base_url, credentials.identity, max_in_flight=self.max_concurrency, max_burst=self.max_burst
            ),
            static_headers={
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": _USER_AGENT,
            },
        )

    def _count_refresh(self) -> None:
        self.stats.add(refreshes=1)

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the hook's pooled session (built on first use).

        Unlike HttpHook's, it carries none of the connection's extras as headers: those are
        settings and secrets, not headers. ``headers`` and ``extra_options`` are accepted for
        HttpHook compatibility; ``headers`` are added, ``extra_options`` are ignored.
        """
        session = self._session
        if session is None:
            settings = self._settings()
            with self._init_lock:
                session = self._session
                if session is None:
                    session = self._session = self._build_session(settings)
        if headers:
            session.headers.update(headers)
        return session

    def _build_session(self, settings: _Settings) -> requests.Session:
        session = requests.Session()
        session.verify = True
        session.headers.update(settings.static_headers)
        session.auth = _BearerAuth(settings.credentials)
        size = max(self.max_in_flight_ever, 10)  # a smaller pool would drop and reopen connections
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        # What requests would read from the environment on every call (proxies, a CA bundle), read
        # once: scanning os.environ per request costs more CPU than the rest of the request. TLS
        # verification stays on whatever the environment says; only the CA bundle may change.
        env = session.merge_environment_settings(settings.base_url, {}, None, None, None)
        verify = env.get("verify")
        self._transport = SessionTransport(
            session,
            verify=verify if isinstance(verify, str) and verify else True,
            proxies=env.get("proxies") or {},
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=settings.read_timeout,
        )
        return session

    # ------------------------------------------------------------------ requests
    def _prepare(self, settings: _Settings, method: str, path: str, payload: Any = None) -> _Request:
        """Build a request: the one place for URL and body, used by the sync and async paths."""
        if payload is None or isinstance(payload, bytes):
            body = payload  # nothing, or JSON encoded by the caller
        else:
            body = json.dumps(payload, separators=(",", ":")).encode()
        return _Request(method, settings.base_url + path, body)

    def _call(self, request: _Request, *, budget_s: float | None = None) -> tuple[_Answer, int]:
        """Send with rate limiting and retries; return the good answer and how many retries it took."""
        settings = self._settings()
        self.get_conn()
        transport = self._transport
        assert transport is not None  # built with the session
        credentials = settings.credentials
        limiter = settings.limiter
        policy = _RetryPolicy(self, credentials, self.retry_budget_seconds if budget_s is None else budget_s)
        stats = self.stats
        while True:
            # The permit first, then the token: a long wait for the limiter must not outlive the token.
            ticket = limiter.acquire(policy.permit_timeout())
            if ticket is None:
                policy.give_up()
            try:
                authorization = credentials.authorization()  # no I/O unless the token is stale
            except _RETRYABLE_AUTH_ERRORS as err:
                limiter.release(ticket, None)
                self._sleep(policy.on_auth_refresh_error(err))
                continue
            except BaseException:
                limiter.release(ticket, None)
                raise
            stats.add(requests=1)
            try:
                answer = transport.send(
                    request.method, request.url, request.body, {"Authorization": authorization}
                )
            except _TRANSPORT_ERRORS as err:
                limiter.release(ticket, None)
                self.log.debug("HubSpot request failed (%s); retrying", type(err).__name__)
                self._sleep(policy.on_transport_error(err, request.url))
                continue
            self._release(limiter, ticket, answer)
            delay = policy.on_answer(answer)
            if delay is None:
                return answer, policy.retries
            if delay == _REFRESH:
                while True:
                    try:
                        credentials.after_rejection(authorization)
                        break
                    except _RETRYABLE_AUTH_ERRORS as err:
                        self._sleep(policy.on_auth_refresh_error(err))
                continue
            self._log_retry(answer)
            self._sleep(delay)

    async def _acall(
        self, session: aiohttp.ClientSession, settings: _Settings, request: _Request
    ) -> tuple[_Answer, int]:
        """Async ``_call`` for triggers: same limiter, same policy, nothing that blocks the loop."""
        import aiohttp

        credentials = settings.credentials
        limiter = settings.limiter
        policy = _RetryPolicy(self, credentials, self.retry_budget_seconds)
        stats = self.stats
        while True:
            ticket = await limiter.aacquire(policy.permit_timeout())
            if ticket is None:
                policy.give_up()
            try:
                authorization = await credentials.aauthorization()  # a refresh runs in a thread
            except _RETRYABLE_AUTH_ERRORS as err:
                limiter.release(ticket, None)
                await self._asleep(policy.on_auth_refresh_error(err))
                continue
            except BaseException:
                limiter.release(ticket, None)
                raise
            stats.add(requests=1)
            headers = {**settings.static_headers, "Authorization": authorization}
            try:
                async with session.request(
                    request.method, request.url, data=request.body, headers=headers, allow_redirects=False
                ) as response:
                    content = await response.read()
                    answer = _Answer(response.status, response.headers, content)
            except (TimeoutError, aiohttp.ClientError) as err:
                limiter.release(ticket, None)
                await self._asleep(policy.on_transport_error(err, request.url))
                continue
            self._release(limiter, ticket, answer)
            delay = policy.on_answer(answer)
            if delay is None:
                return answer, policy.retries
            if delay == _REFRESH:
                while True:
                    try:
                        await credentials.aafter_rejection(authorization)
                        break
                    except _RETRYABLE_AUTH_ERRORS as err:
                        await self._asleep(policy.on_auth_refresh_error(err))
                continue
            self._log_retry(answer)
            await self._asleep(delay)

    @staticmethod
    def _release(limiter: RateLimiter, ticket: Ticket, answer: _Answer) -> None:
        retry_after = _retry_after_seconds(answer.headers) if answer.status == 429 else None
        limiter.release(ticket, answer.status, answer.headers, retry_after=retry_after)

    def _log_retry(self, answer: _Answer) -> None:
        if answer.status == 429:
            self.log.debug("HubSpot answered 429; waiting before the retry")
        else:
            self.log.warning("HubSpot answered %s; retrying", answer.status)

    def _post_json(self, path: str, payload: Any) -> tuple[_Answer, int]:
        return self._call(self._prepare(self._settings(), "POST", path, payload))

    @staticmethod
    def _body(answer: _Answer) -> dict[str, Any]:
        body = _parse_object(answer.content)
        if not body and answer.content.strip() not in (b"", b"{}"):
            raise HubSpotApiError(
                f"HubSpot answered {answer.status} with a body that is not a JSON object",
                status=answer.status,
            )
        return body

    # ------------------------------------------------------------------ the API
    def _paths(self, from_type: str, to_type: str) -> api.ApiPaths:
        return api.association_paths(self._settings().api_version, from_type, to_type)

    def create_associations(
        self, from_type: str, to_type: str, inputs: Sequence[Mapping[str, Any]] | api.JsonArray
    ) -> BatchResponse:
        """Create labelled associations (``batch/create``); ``inputs`` are in HubSpot's shape, as
        objects or as an already encoded JSON array."""
        answer, retries = self._post_json(self._paths(from_type, to_type).batch_create, _inputs_body(inputs))
        return BatchResponse(answer.status, self._body(answer), retries)

    def create_default_associations(
        self, from_type: str, to_type: str, inputs: Sequence[Mapping[str, Any]] | api.JsonArray
    ) -> BatchResponse:
        """Create default (unlabelled) associations (``batch/associate/default``); ``inputs`` as above."""
        path = self._paths(from_type, to_type).batch_associate_default
        answer, retries = self._post_json(path, _inputs_body(inputs))
        return BatchResponse(answer.status, self._body(answer), retries)

    def read_associations(
        self, from_type: str, to_type: str, from_ids: Iterable[str]
    ) -> dict[str, list[dict]]:
        """Read the associations of ``from_ids`` (chunks of 1,000, every page); missing ids map to []."""
        settings = self._settings()
        path = self._paths(from_type, to_type).batch_read
        collector = _ReadCollector(from_ids)
        while (payload := collector.next_payload()) is not None:
            answer, _ = self._call(self._prepare(settings, "POST", path, payload))
            collector.absorb(self._body(answer))
        return collector.result

    async def aread_associations(
        self, from_type: str, to_type: str, from_ids: Iterable[str]
    ) -> dict[str, list[dict]]:
        """Async ``read_associations`` for triggers (aiohttp; the connection is fetched without blocking)."""
        import aiohttp

        settings = await self._asettings()
        path = api.association_paths(settings.api_version, from_type, to_type).batch_read
        collector = _ReadCollector(from_ids)
        timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT_S, sock_read=settings.read_timeout)
        connector = aiohttp.TCPConnector(limit=max(self.max_concurrency, 10))
        # trust_env: proxies from the environment, as requests does on the sync path.
        async with aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=True) as session:
            while (payload := collector.next_payload()) is not None:
                request = self._prepare(settings, "POST", path, payload)
                answer, _ = await self._acall(session, settings, request)
                collector.absorb(self._body(answer))
        return collector.result

    def list_labels(self, from_type: str, to_type: str) -> list[dict]:
        """The association types of ``from_type -> to_type``: ``[{"category", "typeId", "label"}]``."""
        settings = self._settings()
        answer, _ = self._call(self._prepare(settings, "GET", self._paths(from_type, to_type).labels))
        return self._labels_from(answer)

    def _labels_from(self, answer: _Answer) -> list[dict]:
        results = self._body(answer).get("results")
        return [
            {"category": r.get("category"), "typeId": r.get("typeId"), "label": r.get("label")}
            for r in (results if isinstance(results, list) else [])
            if isinstance(r, dict)
        ]

    def association_types(self, from_type: str, to_type: str) -> list[dict]:
        """``list_labels``, cached per hook with ``resolve_label`` (one request per object pair)."""
        key = (from_type, to_type)
        with self._labels_lock:
            known = self._labels.get(key)
        if known is None:
            known = self.list_labels(from_type, to_type)
            with self._labels_lock:
                self._labels[key] = known
        return known

    def resolve_label(self, from_type: str, to_type: str, label: str) -> tuple[str, int]:
        """Find a label by name (case-insensitive): ``(category, typeId)``; cached per hook."""
        wanted = label.strip().casefold()
        key = (from_type, to_type)
        with self._labels_lock:
            known = self._labels.get(key)
        fresh = known is None
        while True:
            if known is None:
                known = self.list_labels(from_type, to_type)
                with self._labels_lock:
                    self._labels[key] = known
            for entry in known:
                name = entry.get("label")
                if isinstance(name, str) and name.strip().casefold() == wanted:
                    return str(entry["category"]), int(entry["typeId"])
            if fresh:
                break
            # Cached and not found: the label may have been created since, so ask HubSpot once more.
            known, fresh = None, True
        existing = sorted({e["label"] for e in known if isinstance(e.get("label"), str)})
        raise UnknownLabelError(label, from_type, to_type, existing)

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap real call (list contacts -> companies labels) and say what to fix if it fails."""
        try:
            settings = self._settings()
            request = self._prepare(settings, "GET", self._paths("contacts", "companies").labels)
            answer, _ = self._call(request, budget_s=_TEST_CONNECTION_BUDGET_S)
            count = len(self._labels_from(answer))
        except HubSpotMissingScopesError as err:
            scopes = ", ".join(err.missing_scopes) or "the scopes HubSpot names in its answer"
            return False, (
                f"HubSpot accepted the token but it lacks scope(s): {scopes}. Add them to the private app "
                "(or the OAuth app's install) and update the token."
            )
        except HubSpotAuthError as err:
            return False, (
                f"HubSpot refused the credentials ({err}). Check the private-app token, or the OAuth "
                "client id, client secret and refresh token."
            )
        except HubSpotConfigError as err:
            return False, f"The connection is not usable: {err}"
        except HubSpotTransportError as err:
            return False, f"Could not reach HubSpot: {err}. Check the host and the network."
        except HubSpotError as err:
            return False, f"HubSpot answered with an error: {err}"
        return True, (
            f"Connected to {settings.base_url} (API {settings.api_version}); the token works and sees "
            f"{count} association type(s) for contacts -> companies."
        )
