"""HubSpotHook: the Airflow adapter over the HubSpot client (``airflow_hubspot_assoc.client``).

Why a hook of its own rather than HttpHook as is: HubSpot needs bearer tokens that may expire
(OAuth), a process-wide rate limiter, retries decided by status and HubSpot's ``category``, an async
read path for triggers, and connection extras (client secret, refresh token, API version) that must
never travel as HTTP headers, which HttpHook would do with every extra.

The hook's jobs are Airflow's: read the connection into settings (and reject what cannot work),
register secrets with the masker, build the pooled session, ``test_connection``, and hand each call
to the client, which paces, authorises and retries it. HttpHook's ``run`` family would send around
all of that, so it is refused with an error that names the method to use.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.adapters import HTTPAdapter

from airflow_hubspot_assoc import __version__, api
from airflow_hubspot_assoc.client.credentials import credentials_from_connection, default_masker
from airflow_hubspot_assoc.client.hubspot import (
    CONNECT_TIMEOUT_S,
    DEFAULT_READ_TIMEOUT_S,
    BatchResponse,
    ClientSettings,
    HubSpotClient,
)
from airflow_hubspot_assoc.client.limiter import RateLimiter
from airflow_hubspot_assoc.client.registry import limiter_for
from airflow_hubspot_assoc.client.retry import RetrySettings
from airflow_hubspot_assoc.client.sender import AssociationSender, most_in_flight
from airflow_hubspot_assoc.client.stats import CallStats
from airflow_hubspot_assoc.client.transport import BearerAuth, SessionTransport
from airflow_hubspot_assoc.exceptions import (
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotError,
    HubSpotMissingScopesError,
    HubSpotTransportError,
)

#: The hook's counters (kept under its old name for callers of ``hook.stats``).
HookStats = CallStats

_USER_AGENT = f"airflow-hubspot-assoc/{__version__}"
_TEST_CONNECTION_BUDGET_S = 15.0
_TLS_EXTRAS = ("verify", "verify_ssl", "ssl_verify", "insecure")


class HubSpotHook(HttpHook):
    """Talk to HubSpot's CRM associations API with retries, rate limiting and token refresh.

    :param hubspot_conn_id: the ``hubspot`` connection: host (default ``https://api.hubapi.com``),
        password = private-app token, or extras ``client_id``/``client_secret``/``refresh_token`` for
        OAuth; extras ``api_version`` (``v4`` or ``YYYY-03``/``YYYY-09``), ``timeout`` (read timeout in
        seconds) and ``portal_id``.
    :param max_concurrency: requests in flight at most while HubSpot announces no rate limit.
    :param max_burst: requests in flight at most while HubSpot announces a rolling window (never below
        ``max_concurrency``); None: as many as the window lets us send, at most 250.
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
        self.stats = CallStats()
        # Read when the client is built (first call): tests set them right after construction.
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep
        self._asleep: Callable[[float], Any] = asyncio.sleep
        self._random = random.Random()
        self._init_lock = threading.Lock()
        self._settings_cache: ClientSettings | None = None
        self._session: requests.Session | None = None
        self._client_cache: HubSpotClient | None = None

    # ------------------------------------------------------------------ connection -> settings
    @property
    def max_in_flight_ever(self) -> int:
        """The most requests this hook can have in flight at once (threads worth starting for it)."""
        return most_in_flight(self.max_concurrency, self.max_burst)

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
        return self.client.limiter

    def _settings(self) -> ClientSettings:
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

    async def _asettings(self) -> ClientSettings:
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
    ) -> ClientSettings:
        """Turn a Connection into validated settings (pure apart from the masker)."""
        if conn.password:
            masker(conn.password)
        for key in _TLS_EXTRAS:
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
        return ClientSettings(
            base_url=base_url,
            api_version=version,
            credentials=credentials,
            static_headers={
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": _USER_AGENT,
            },
            read_timeout=read_timeout,
            portal_id=str(portal) if portal not in (None, "") else None,
        )

    def _count_refresh(self) -> None:
        self.stats.add(refreshes=1)

    # ------------------------------------------------------------------ session and client
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

    def _build_session(self, settings: ClientSettings) -> requests.Session:
        session = requests.Session()
        session.verify = True
        session.headers.update(settings.static_headers)
        session.auth = BearerAuth(settings.credentials)
        size = max(self.max_in_flight_ever, 10)  # a smaller pool would drop and reopen connections
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _transport(self) -> SessionTransport:
        settings = self._settings()
        return SessionTransport.for_session(
            self.get_conn(),
            settings.base_url,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=settings.read_timeout,
        )

    @property
    def client(self) -> HubSpotClient:
        """The client that makes this hook's calls (built on first use, from the connection)."""
        client = self._client_cache
        if client is None:
            client = self._build_client(self._settings())
        return client

    async def _aclient(self) -> HubSpotClient:
        client = self._client_cache
        if client is None:
            client = self._build_client(await self._asettings())
        return client

    def _build_client(self, settings: ClientSettings) -> HubSpotClient:
        limiter = limiter_for(
            settings.base_url,
            settings.credentials.identity,
            max_in_flight=self.max_concurrency,
            max_burst=self.max_burst,
        )
        with self._init_lock:
            if self._client_cache is None:
                self._client_cache = HubSpotClient(
                    settings,
                    limiter=limiter,
                    transport=self._transport,
                    stats=self.stats,
                    retry=RetrySettings(
                        self.retry_budget_seconds, self.retry_base_delay, self.retry_max_delay
                    ),
                    max_concurrency=self.max_concurrency,
                    clock=self._clock,
                    sleep=self._sleep,
                    asleep=self._asleep,
                    rng=self._random,
                )
            return self._client_cache

    def sender(self, from_type: str, to_type: str) -> AssociationSender:
        """What a load sends its batches through (and asks for capacity and counters)."""
        return AssociationSender(
            self.client, from_type, to_type, max_concurrency=self.max_concurrency, max_burst=self.max_burst
        )

    # ------------------------------------------------------------------ HttpHook's run family
    def _refuse(self, name: str) -> NoReturn:
        raise NotImplementedError(
            f"HubSpotHook.{name}() is not supported: HttpHook's request path would bypass the rate "
            "limiter, the retry policy and the token refresh. Use the hook's API methods "
            "(create_associations, read_associations, read_association_types, ...) or hook.client.call()."
        )

    def run(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused (see ``_refuse``): use the hook's API methods or ``hook.client.call``."""
        self._refuse("run")

    def run_and_check(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused, as ``run``."""
        self._refuse("run_and_check")

    def run_with_advanced_retry(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused, as ``run``."""
        self._refuse("run_with_advanced_retry")

    # ------------------------------------------------------------------ the API (see the client)
    def create_associations(
        self, from_type: str, to_type: str, inputs: Sequence[Mapping[str, Any]] | api.JsonArray
    ) -> BatchResponse:
        """Create labelled associations (``batch/create``); see ``HubSpotClient``."""
        return self.client.create_associations(from_type, to_type, inputs)

    def create_default_associations(
        self, from_type: str, to_type: str, inputs: Sequence[Mapping[str, Any]] | api.JsonArray
    ) -> BatchResponse:
        """Create default (unlabelled) associations (``batch/associate/default``)."""
        return self.client.create_default_associations(from_type, to_type, inputs)

    def read_associations(
        self, from_type: str, to_type: str, from_ids: Iterable[str]
    ) -> dict[str, list[dict]]:
        """Read the associations of ``from_ids`` (chunks of 1,000, every page); missing ids map to []."""
        return self.client.read_associations(from_type, to_type, from_ids)

    async def aread_associations(
        self, from_type: str, to_type: str, from_ids: Iterable[str]
    ) -> dict[str, list[dict]]:
        """Async ``read_associations`` for triggers (aiohttp; the connection is fetched without blocking)."""
        client = await self._aclient()
        return await client.aread_associations(from_type, to_type, from_ids)

    def read_association_types(self, from_type: str, to_type: str) -> list[dict[str, Any]]:
        """Ask HubSpot for the association types of an object pair: ``[{"category", "typeId", "label"}]``."""
        return self.client.read_association_types(from_type, to_type)

    def cached_association_types(self, from_type: str, to_type: str) -> list[dict[str, Any]]:
        """``read_association_types``, asked once per hook and object pair."""
        return self.client.cached_association_types(from_type, to_type)

    def resolve_label(self, from_type: str, to_type: str, label: str) -> tuple[str, int]:
        """Find a label by name (case-insensitive): ``(category, typeId)``; cached per hook."""
        return self.client.resolve_label(from_type, to_type, label)

    def create_label(
        self, from_type: str, to_type: str, label: str, *, name: str, inverse_label: str | None = None
    ) -> tuple[str, int]:
        """Create a USER_DEFINED label (and its inverse): ``(category, typeId)``; see ``HubSpotClient``."""
        return self.client.create_label(from_type, to_type, label, name=name, inverse_label=inverse_label)

    # Old names, kept while other branches still call them.
    list_labels = read_association_types
    association_types = cached_association_types

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap real call (list contacts -> companies labels) and say what to fix if it fails."""
        try:
            settings = self._settings()
            count = len(
                self.client.read_association_types(
                    "contacts", "companies", budget_s=_TEST_CONNECTION_BUDGET_S
                )
            )
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


__all__ = ["BatchResponse", "HookStats", "HubSpotHook"]
