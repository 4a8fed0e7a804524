"""The hook's transport: requests' pools and settings, without requests' per-request work.

What must survive the shortcut: proxies named by the environment (a real forwarding proxy on
loopback here), the session's headers, no redirect following, and the same ``requests`` exceptions
for every transport failure, so that the retry policy keeps working.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from airflow_hubspot_assoc.client.transport import SessionTransport, as_requests_error
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook


class _ForwardingProxy(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: takes absolute-URI requests and relays them (records each)."""

    seen: list[tuple[str, str]]

    def _relay(self) -> None:
        target = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")
        }
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        try:
            upstream.request(self.command, target.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
        finally:
            upstream.close()
        self.server.seen.append((self.command, self.path))  # type: ignore[attr-defined]
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _relay

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


@pytest.fixture
def proxy() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardingProxy)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


pytestmark = pytest.mark.usefixtures("fresh_limiters")


def _inputs(n: int, start: int) -> list[dict]:
    spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]
    return [
        {"from": {"id": str(start + i)}, "to": {"id": str(start + 900 + i)}, "types": spec} for i in range(n)
    ]


def test_requests_go_through_the_proxy_the_environment_names(monkeypatch, hubspot_conn, proxy):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    hook = HubSpotHook()
    for n in range(3):
        response = hook.create_associations("contacts", "companies", _inputs(2, start=100 + 10 * n))
        assert response.body["status"] == "COMPLETE"
    path = "/crm/v4/associations/contacts/companies/batch/create"
    assert proxy.seen == [("POST", hubspot_conn.url + path)] * 3  # type: ignore[attr-defined]
    assert len(hubspot_conn.associations("contacts", "companies")) == 6


def test_without_a_proxy_nothing_goes_through_one(monkeypatch, hubspot_conn, proxy):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    HubSpotHook().create_associations("contacts", "companies", _inputs(1, start=1))
    assert proxy.seen == []  # type: ignore[attr-defined]
    assert len(hubspot_conn.associations("contacts", "companies")) == 1


def test_the_session_headers_and_the_per_call_ones_are_both_sent(hubspot_conn):
    session = requests.Session()
    session.headers["X-Session-Header"] = "kept"
    transport = SessionTransport(session, verify=True, proxies={}, connect_timeout=5, read_timeout=5)
    path = "/crm/associations/v4/contacts/companies/labels"
    token = {"Authorization": f"Bearer {hubspot_conn.token}"}
    answer = transport.send("GET", hubspot_conn.url + path, None, token)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")  # case-insensitive headers
    (seen,) = [r for r in hubspot_conn.requests if r.path == path]
    assert seen.headers.get("X-Session-Header") == "kept"
    assert seen.headers.get("Authorization") not in (None, "")  # sent (the stand-in redacts its value)


def test_a_refused_connection_raises_requests_connection_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nobody listens there
    transport = SessionTransport(
        requests.Session(), verify=True, proxies={}, connect_timeout=2, read_timeout=2
    )
    with pytest.raises(requests.ConnectionError):
        transport.send("GET", f"http://127.0.0.1:{port}/x", None, {})


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SSLError("certificate verify failed"), requests.exceptions.SSLError),
        (ProxyError("proxy said no", OSError("refused")), requests.exceptions.ProxyError),
        (NewConnectionError(None, "refused"), requests.ConnectionError),
        (ConnectTimeoutError("connect timed out"), requests.ConnectTimeout),
        (ReadTimeoutError(None, "/x", "read timed out"), requests.ReadTimeout),
        (ProtocolError("Connection aborted.", ConnectionResetError()), requests.ConnectionError),
        (ConnectionResetError("reset"), requests.ConnectionError),
    ],
)
def test_urllib3_failures_become_the_requests_exceptions_requests_would_raise(error, expected):
    mapped = as_requests_error(error)
    assert type(mapped) is expected  # exact: a refusal must not pass for a ConnectTimeout
    assert mapped.__cause__ is None and error in mapped.args  # the original error travels along


def test_errors_that_are_not_transport_errors_pass_through_unchanged():
    error = ValueError("a bug, not a network failure")
    assert as_requests_error(error) is error
