"""The HubSpot stand-in: a real HTTP/1.1 server on loopback, and its Python API.

One thread per connection (keep-alive), so hundreds of concurrent clients are served the way a
real API would serve them, and a request that sleeps (latency, a slow fault) does not hold up
the others. What each request gets is decided by :class:`~.dispatch.Dispatcher`.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from airflow_hubspot_assoc.testing.config import (
    OAuthApp,
    StandInConfig,
)
from airflow_hubspot_assoc.testing.dispatch import Dispatcher, Outcome
from airflow_hubspot_assoc.testing.errors import error_body
from airflow_hubspot_assoc.testing.portal_api import PortalMethods
from airflow_hubspot_assoc.testing.stats import LoggedRequest, Stats

__all__ = ["HubSpotStandIn"]

_MAX_BODY = 64 * 1024 * 1024
_REDACTED = "Bearer <redacted>"


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, asks the dispatcher, writes the answer (or drops the connection)."""

    protocol_version = "HTTP/1.1"
    server_version = "HubSpotStandIn/1.0"
    sys_version = ""
    # Idle keep-alive connections are closed after this, so abandoned clients free their thread.
    timeout = 120
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write, and small answers must not wait for Nagle.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; ``hs.requests`` is the log."""

    def _serve(self, method: str) -> None:
        dispatcher = self.server.dispatcher
        started = time.time()
        dispatcher.stats.enter()
        try:
            body = self._read_body()
            if body is None:
                return
            outcome = self._dispatch(method, body)
            if outcome.delay_s > 0 and dispatcher.stopping.wait(outcome.delay_s):
                outcome.drop = True  # shutting down: the client sees a dropped connection
            # Counted before the client hears back, so whoever has the answer sees it counted.
            self._record(method, outcome, started)
        finally:
            dispatcher.stats.leave()
        if outcome.drop:
            self._drop()
        else:
            self._answer(outcome)

    def _record(self, method: str, outcome: Outcome, started: float) -> None:
        if not outcome.record:
            return
        dispatcher = self.server.dispatcher
        status = 0 if outcome.drop else outcome.status
        dispatcher.stats.record_answer(outcome.endpoint, status)
        headers = {k: (_REDACTED if k.lower() == "authorization" else v) for k, v in self.headers.items()}
        dispatcher.log.append(
            LoggedRequest(
                method=method,
                path=self.path,
                endpoint=outcome.endpoint,
                status=status,
                n_inputs=outcome.n_inputs,
                started=started,
                finished=time.time(),
                headers=headers,
            )
        )

    def _dispatch(self, method: str, body: bytes) -> Outcome:
        dispatcher = self.server.dispatcher
        try:
            return dispatcher.handle(method, self.path, self.headers.get("Authorization"), body)
        except Exception as err:
            # A bug in the stand-in: answer like HubSpot's 500 and count it, so fixtures fail.
            dispatcher.stats.record_response_violation(
                f"{method} {self.path}", ["".join(traceback.format_exception(err)).strip()]
            )
            return Outcome(500, error_body("INTERNAL_ERROR", f"stand-in error: {err!r}"), "unknown")

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering a broken request."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.close_connection = True
            self.send_error(HTTPStatus.BAD_REQUEST, "bad Content-Length")
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self.send_error(HTTPStatus.BAD_REQUEST, "bad chunk size")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                self.close_connection = True
                self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _answer(self, outcome: Outcome) -> None:
        payload = b"" if outcome.body is None else json.dumps(outcome.body, separators=(",", ":")).encode()
        try:
            reason = HTTPStatus(outcome.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {outcome.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
            # A 204 (v4's archives) has no body, so no content type either.
            *(["Content-Type: application/json;charset=utf-8"] if outcome.body is not None else []),
            f"Content-Length: {len(payload)}",
            *(f"{k}: {v}" for k, v in outcome.headers.items()),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + payload)
        except OSError:
            # The client gave up (a read timeout during a slow answer, for instance).
            self.close_connection = True

    def _drop(self) -> None:
        """Abort the connection with a TCP reset and no answer, as a crashed proxy would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass
        # The base class flushes and closes wfile after us; give it something harmless.
        self.wfile = io.BytesIO()

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can take seconds offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Close kept-alive connections too, so a stopped stand-in really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # clients hanging up is business as usual
        super().handle_error(request, client_address)


class HubSpotStandIn(PortalMethods):
    """A loopback HTTP server that behaves like HubSpot's CRM APIs (see the module docs).

    Its data (labels, records, properties, associations) is seeded and inspected through the
    methods of :class:`~.portal_api.PortalMethods`.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with HubSpotStandIn(StandInConfig(rate_limit=RateLimitConfig(max_requests=10))) as hs:
            requests.post(f"{hs.url}/crm/v4/associations/contacts/companies/batch/create", ...)
    """

    def __init__(self, config: StandInConfig | None = None) -> None:
        self.config = config or StandInConfig()
        self._stopping = threading.Event()
        self._dispatcher = Dispatcher(self.config, self._stopping)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> HubSpotStandIn:
        """Bind (port 0 picks a free port) and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        host = "127.0.0.1" if self.config.host == "localhost" else self.config.host
        self._stopping.clear()
        self._server = _Server((host, self.config.port), self._dispatcher)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hubspot-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake sleeping answers, close the listener and open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubSpotStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- where and who -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL to give a client (or a connection's host)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """A private-app token with every scope."""
        return self.config.token

    def connection_uri(self, api_version: str = "v4", **extra: Any) -> str:
        """The JSON for ``AIRFLOW_CONN_HUBSPOT_DEFAULT`` that points a hook at this stand-in."""
        return json.dumps(
            {
                "conn_type": "hubspot",
                "host": self.url,
                "password": self.token,
                "extra": {"api_version": api_version, **extra},
            }
        )

    def add_token(self, token: str, scopes: Iterable[str] | None = None) -> None:
        """Accept another private-app token (``scopes=None``: every scope), its own app."""
        self._dispatcher.auth.add_token(token, scopes)

    def add_oauth_app(self, app: OAuthApp) -> None:
        """Accept an OAuth app, whose refresh token trades for access tokens at /oauth/v1/token."""
        self._dispatcher.auth.add_oauth_app(app)

    # -- observation and control ---------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        """Live counters (see :class:`~.stats.Stats`)."""
        return self._dispatcher.stats

    def reset_stats(self) -> None:
        """Zero the counters and clear the request log (stored data is kept)."""
        self._dispatcher.stats.reset()
        self._dispatcher.log.clear()

    @property
    def requests(self) -> list[LoggedRequest]:
        """The most recent requests (up to ``request_log_size``), oldest first."""
        return self._dispatcher.log.snapshot()

    def start_429_storm(self, seconds: float) -> None:
        """Answer every API request with 429 for the next ``seconds``."""
        self._dispatcher.faults.start_storm(seconds)
