"""Send the hook's requests through its ``requests`` session's own connection pools, minus the overhead.

Why: through ``Session.send`` a 100-input batch cost the client about 410 microseconds of CPU on the
machine the benchmarks ran on, and 180 through the same urllib3 pool called directly; the
difference (copying the prepared request, the cookie jar, response hooks, building a ``Response``)
was the largest single cost per pair of the whole load. So the hook keeps a ``requests.Session``
for everything that decides *where and how securely* a request goes, and skips only the per-request
bookkeeping it does not use:

* the session's adapter picks the pool, exactly as ``HTTPAdapter.send`` does: TLS verified with the
  CA bundle the environment names, the proxy the environment names (``HTTPS_PROXY`` / ``NO_PROXY``),
  the adapter's pool sizes;
* headers are the session's (User-Agent, the hook's static headers) plus the token per attempt;
* redirects are never followed (a redirect must not replay the token), bodies are read whole;
* urllib3's errors become the ``requests`` exceptions ``HTTPAdapter.send`` would raise, so callers
  keep one set of exceptions to handle.

Cookies are not kept: HubSpot's API authenticates by token, and a client that replays cookies set by
a load balancer gains nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3
from requests.adapters import HTTPAdapter
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


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: status, headers (case-insensitive mapping) and the decoded body."""

    status: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(slots=True)
class _Route:
    """What is fixed per method and URL: the adapter, a template request, the URL to send, headers,
    and the pool the adapter chose (asked again only if the pool manager closed it)."""

    adapter: HTTPAdapter
    template: requests.PreparedRequest
    target: str
    headers: dict[str, str]
    pool: HTTPConnectionPool | None = None


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


__all__ = ["Answer", "SessionTransport", "as_requests_error"]
