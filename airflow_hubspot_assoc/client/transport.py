"""Send requests through a ``requests`` session's own urllib3 pools (sync), or aiohttp (async).

Why: through ``Session.send`` each request pays for copying the prepared request, the cookie jar,
response hooks and building a ``Response``; for a load of small batches that bookkeeping was the
largest single cost per pair (the README's performance section has the figures). So the client
keeps a ``requests.Session`` for everything that decides *where and how securely* a request goes,
and skips only the per-request bookkeeping it does not use:

* the session's adapter picks the pool, exactly as ``HTTPAdapter.send`` does: TLS verified with the
  CA bundle the environment names, the proxy the environment names (``HTTPS_PROXY`` / ``NO_PROXY``),
  the adapter's pool sizes;
* headers are the session's (User-Agent, the hook's static headers) plus the token per attempt;
* redirects are never followed (a redirect must not replay the token), bodies are read whole;
* urllib3's errors become the ``requests`` exceptions ``HTTPAdapter.send`` would raise, so callers
  keep one set of exceptions to handle.

Cookies are not kept: HubSpot's API authenticates by token, and a client that replays cookies set by
a load balancer gains nothing. Both senders turn their transport failures into ``TransportFailed``,
so the call loop (``calls.py``) has one failure type for sync and async.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from airflow_hubspot_assoc.client.answers import Answer
from airflow_hubspot_assoc.client.credentials import Credentials

if TYPE_CHECKING:
    import aiohttp

#: Send one request: method, URL, body, per-attempt headers; an Answer, or TransportFailed.
SyncSend = Callable[[str, str, "bytes | None", Mapping[str, str]], Answer]
AsyncSend = Callable[[str, str, "bytes | None", Mapping[str, str]], Awaitable[Answer]]
_SYNC_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class TransportFailed(Exception):
    """No HTTP answer (connection error, timeout, TLS): what the retry policy needs to know of it.

    Both drivers raise it (the sync one from ``requests``' errors, the async one from aiohttp's), so
    the call loop handles one failure type.
    """

    def __init__(self, cause: BaseException, url: str, *, tls: bool, timed_out: bool) -> None:
        super().__init__(f"{type(cause).__name__} for {url}")
        self.cause = cause
        self.url = url
        self.tls = tls
        self.timed_out = timed_out


@dataclass(slots=True)
class _Route:
    """What is fixed per method and URL: the adapter, a template request, the URL to send, headers,
    and the pool the adapter chose (asked again only if the pool manager closed it)."""

    adapter: HTTPAdapter
    template: requests.PreparedRequest
    target: str
    headers: dict[str, str]
    pool: HTTPConnectionPool | None = None


class BearerAuth(AuthBase):
    """Adds the current token to requests that other code sends through the hook's session."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if "Authorization" not in request.headers:
            request.headers["Authorization"] = self._credentials.authorization()
        return request


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Keep the session's auth out of templates: the token is set per attempt."""
    return request


class SessionTransport:
    """Send requests through ``session``'s pools; one instance per hook, shared by its threads.

    :param session: supplies adapters, pools, TLS settings and default headers.
    :param verify: ``True`` or a CA bundle path (what the environment says; never ``False``).
    :param proxies: the proxies the environment names for the hook's URL (resolved once).
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        verify: bool | str,
        proxies: Mapping[str, str],
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._session = session
        self._verify = verify
        self._proxies = dict(proxies)
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._routes: dict[tuple[str, str], _Route] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_session(
        cls, session: requests.Session, base_url: str, *, connect_timeout: float, read_timeout: float
    ) -> SessionTransport:
        """A transport over ``session`` for ``base_url``, with what the environment says for it.

        What requests would read from the environment on every call (proxies, a CA bundle) is read
        once: scanning os.environ per request costs more CPU than the rest of the request. TLS
        verification stays on whatever the environment says; only the CA bundle may change.
        """
        env = session.merge_environment_settings(base_url, {}, None, None, None)
        verify = env.get("verify")
        return cls(
            session,
            verify=verify if isinstance(verify, str) and verify else True,
            proxies=env.get("proxies") or {},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )

    def _route(self, method: str, url: str) -> _Route:
        route = self._routes.get((method, url))
        if route is None:
            with self._lock:
                template = self._session.prepare_request(requests.Request(method, url, auth=_no_auth))
                adapter = self._session.get_adapter(url)
                if not isinstance(adapter, HTTPAdapter):
                    raise TypeError(f"the session's adapter for {url} is not a requests HTTPAdapter")
                headers = dict(template.headers)
                route = _Route(adapter, template, adapter.request_url(template, self._proxies), headers)
                self._routes[(method, url)] = route
        return route

    def _pool(self, route: _Route, url: str) -> HTTPConnectionPool:
        """The pool ``HTTPAdapter.send`` would use: TLS context, CA bundle and proxy as requests decides."""
        pool = route.adapter.get_connection_with_tls_context(
            route.template, self._verify, proxies=self._proxies, cert=None
        )
        route.adapter.cert_verify(pool, url, self._verify, None)
        assert isinstance(pool, HTTPConnectionPool)  # HTTPSConnectionPool is one too
        return pool

    def send(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> Answer:
        """Send one request (no redirects followed) and read the whole answer.

        :param headers: added to the session's headers for this request (the Authorization header).
        :raises requests.RequestException: as ``requests`` would raise for the same failure.
        """
        route = self._route(method, url)
        all_headers = {**route.headers, **headers}
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        try:
            pool = route.pool
            if pool is None or pool.pool is None:  # first use, or closed (evicted by its manager)
                pool = route.pool = self._pool(route, url)
            response = pool.urlopen(
                method,
                route.target,
                body=body,
                headers=all_headers,
                redirect=False,
                assert_same_host=False,
                retries=False,
                timeout=self._timeout,
                preload_content=True,
                decode_content=True,
            )
        except Exception as err:
            mapped = as_requests_error(err)
            if mapped is err:
                raise
            raise mapped from err
        return Answer(response.status, response.headers, response.data)


def as_requests_error(err: Exception) -> Exception:
    """The ``requests`` exception ``HTTPAdapter.send`` raises for a urllib3 (or socket) failure."""
    if isinstance(err, requests.RequestException):
        return err
    kind: type[requests.RequestException]
    if isinstance(err, SSLError):
        kind = requests.exceptions.SSLError
    elif isinstance(err, ProxyError):
        kind = requests.exceptions.ProxyError
    elif isinstance(err, NewConnectionError):  # a subclass of ConnectTimeoutError, but a refusal
        kind = requests.ConnectionError
    elif isinstance(err, ConnectTimeoutError):
        kind = requests.ConnectTimeout
    elif isinstance(err, ReadTimeoutError):
        kind = requests.ReadTimeout
    elif isinstance(err, ProtocolError | HTTPError | OSError):
        kind = requests.ConnectionError
    else:
        return err
    return kind(err)


def sync_sender(transport: SessionTransport) -> SyncSend:
    """``transport.send`` with its transport failures as ``TransportFailed``."""

    def send(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> Answer:
        try:
            return transport.send(method, url, body, headers)
        except _SYNC_TRANSPORT_ERRORS as err:
            tls = isinstance(err, requests.exceptions.SSLError)
            raise TransportFailed(err, url, tls=tls, timed_out=isinstance(err, requests.Timeout)) from err

    return send


def async_sender(session: aiohttp.ClientSession, static_headers: Mapping[str, str]) -> AsyncSend:
    """Send through an aiohttp session (no redirects followed, body read whole), failures as above."""
    import ssl

    import aiohttp

    async def send(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> Answer:
        try:
            async with session.request(
                method, url, data=body, headers={**static_headers, **headers}, allow_redirects=False
            ) as response:
                return Answer(response.status, response.headers, await response.read())
        except (TimeoutError, aiohttp.ClientError) as err:
            tls = isinstance(err, aiohttp.ClientSSLError | ssl.SSLError)
            raise TransportFailed(err, url, tls=tls, timed_out=isinstance(err, TimeoutError)) from err

    return send


__all__ = [
    "AsyncSend",
    "BearerAuth",
    "SessionTransport",
    "SyncSend",
    "TransportFailed",
    "as_requests_error",
    "async_sender",
    "sync_sender",
]
