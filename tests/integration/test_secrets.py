"""Secrets never leak, and a token never travels where it could be read or redirected.

Why: a HubSpot private-app token or an OAuth app's client secret and refresh token open a whole CRM.
Airflow keeps task logs on shared storage, XCom and rendered templates in its database, trigger kwargs
in its database too; the package adds failed-pairs files and checkpoints. After runs that fail in every
way we know of (401 bad token, 403 missing scope, OAuth with a refused refresh token, 5xx until the
retry budget ends, invalid input, unknown label) and runs that succeed (private app, OAuth with access
tokens that expire every two seconds, a deferrable sensor whose trigger polls in the triggerer), every
place is searched for every secret, including every access token the stand-in issued. Tokens are
random per run, so a hit cannot be a coincidence.

The second half checks the transport: plain ``http://`` is refused unless the host is loopback, TLS
verification stays on whatever the connection or the environment says (a server with a self-signed
certificate never receives a byte of HTTP, so never a token), a connection extra that tries to turn it
off is refused or warned about rather than silently ignored, and a redirect never carries the token on.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import json
import logging
import re
import secrets
import socket
import sqlite3
import ssl
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.exceptions import HubSpotConfigError, HubSpotTlsError, HubSpotTransportError
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.testing import (
    FaultConfig,
    HubSpotStandIn,
    LatencyConfig,
    OAuthApp,
    StandInConfig,
)
from tests.helpers import oauth_connection_json, run_dag, task_results, task_states
from tests.integration.airflow_cluster import TERMINAL_RUN_STATES, AirflowCluster, airflow_cluster
from tests.integration.reliability_support import (
    find_secrets,
    issued_access_tokens,
    write_pairs_csv,
)

CLIENT_ID = "secrets-test-client"


def _secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(16)}"


class Secrets:
    """Random credentials for one test: the good, the bad and the scope-less."""

    def __init__(self) -> None:
        self.token = _secret("pat-na1-good")
        self.bad_token = _secret("pat-na1-bad")
        self.no_scope_token = _secret("pat-na1-noscope")
        self.client_secret = _secret("client-secret")
        self.refresh_token = _secret("refresh-good")
        self.bad_refresh_token = _secret("refresh-bad")
        self.errors_token = _secret("pat-na1-5xx")

    def all(self, *standins: HubSpotStandIn) -> list[str]:
        """Every secret, plus every access token the stand-ins issued."""
        fixed = [
            self.token,
            self.bad_token,
            self.no_scope_token,
            self.client_secret,
            self.refresh_token,
            self.bad_refresh_token,
            self.errors_token,
        ]
        return fixed + [token for hs in standins for token in issued_access_tokens(hs)]


def connection(host: str, password: str | None = None, **extra: Any) -> str:
    """``AIRFLOW_CONN_...`` JSON for a hubspot connection."""
    conn: dict[str, Any] = {"conn_type": "hubspot", "host": host, "extra": extra}
    if password is not None:
        conn["password"] = password
    return json.dumps(conn)


def texts_under(root: Path) -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every file under ``root``, binary files decoded leniently (SQLite pages too)."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes().decode("utf-8", errors="replace")


def database_texts(database: Path, fernet_key: str | None = None) -> Iterator[tuple[str, str]]:
    """Every text value of the tables where Airflow keeps what tasks produce, trigger kwargs decrypted."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as db:
        for table in ("xcom", "rendered_task_instance_fields", "task_instance", "log", "trigger"):
            try:
                rows = db.execute(f"SELECT * FROM {table}").fetchall()
            except sqlite3.OperationalError:
                continue
            yield f"db:{table}", "\n".join(repr(row) for row in rows)
        if fernet_key:
            yield from decrypted_triggers(db, fernet_key)


def decrypted_triggers(db: sqlite3.Connection, fernet_key: str) -> Iterator[tuple[str, str]]:
    """The kwargs of every trigger row, decrypted with the installation's Fernet key."""
    from cryptography.fernet import Fernet

    fernet = Fernet(fernet_key.encode())
    for trigger_id, classpath, kwargs in db.execute("SELECT id, classpath, kwargs FROM trigger"):
        text = kwargs if kwargs.startswith("{") else fernet.decrypt(kwargs.encode()).decode()
        yield f"db:trigger {trigger_id} {classpath} (decrypted)", text


# -- 1. every failure mode through real Airflow processes -----------------------------------------
MATRIX_DAG = "secrets_matrix"
EXPECTED_STATES = {
    "bad_token": "failed",
    "missing_scope": "failed",
    "oauth_bad_refresh": "failed",
    "invalid_input": "failed",
    "unknown_label": "failed",
    "server_errors": "failed",
    "success_private": "success",
    "success_oauth": "success",
    "confirm": "success",
    "connection_tests": "success",
}


def matrix_dag(work: Path) -> str:
    """A DAG with one task per failure mode and two successful loads plus a deferrable sensor."""
    return textwrap.dedent(
        f'''
        """Every way to fail (and succeed) with secrets around, for the secrets e2e test."""

        from __future__ import annotations

        import pendulum
        from airflow.sdk import DAG, task

        from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
        from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
        from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

        WORK = "{work}"


        def load(task_id, conn_id, path, **kwargs):
            arguments = dict(association_type_id=279)
            arguments.update(kwargs)
            return BatchCreateAssociationsOperator(
                task_id=task_id,
                hubspot_conn_id=conn_id,
                from_object_type="contacts",
                to_object_type="companies",
                pairs_path=f"{{WORK}}/{{path}}",
                batch_size=10,
                max_concurrency=2,
                max_failed_ratio=0.2,
                failed_pairs_path=f"{{WORK}}/out/{{task_id}}/failed.jsonl",
                checkpoint_path=f"{{WORK}}/out/{{task_id}}/checkpoints",
                checkpoint_interval=0.0,
                retries=0,
                **arguments,
            )


        with DAG(
            "{MATRIX_DAG}",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            catchup=False,
            max_active_tasks=4,
            tags=["e2e"],
        ):
            load("bad_token", "hs_bad_token", "good.csv")
            load("missing_scope", "hs_no_scope", "good.csv")
            load("oauth_bad_refresh", "hs_oauth_bad_refresh", "good.csv")
            load("invalid_input", "hs_oauth", "bad.csv")
            load("unknown_label", "hs_oauth", "good.csv", association_type_id=None, association_label="Nope")
            load("success_private", "hubspot_default", "private.csv")
            created = load("success_oauth", "hs_oauth", "good.csv")
            HubSpotBatchStatusSensor(
                task_id="confirm", batch=created.output, verify="all", deferrable=True, poke_interval=2,
                timeout=180,
            )

            @task(retries=0)
            def server_errors():
                inputs = [{{"from": {{"id": "1"}}, "to": {{"id": "2"}}}}]
                HubSpotHook("hs_5xx", retry_budget_seconds=3).create_default_associations(
                    "contacts", "companies", inputs
                )

            @task(retries=0)
            def connection_tests():
                names = ("hs_bad_token", "hs_no_scope", "hs_oauth_bad_refresh", "hs_oauth", "hubspot_default")
                return {{name: list(HubSpotHook(name).test_connection()) for name in names}}

            server_errors()
            connection_tests()
        '''
    )


def wait_collecting_triggers(cluster: AirflowCluster, run_id: str, timeout: float) -> tuple[str, list]:
    """Wait for the run to end; meanwhile copy every trigger row's decrypted kwargs (triggers are
    deleted once they fire, so the table is empty afterwards)."""
    key = cluster.env["AIRFLOW__CORE__FERNET_KEY"]
    database = cluster.home / "airflow.db"
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        cluster.check_alive()
        with (
            contextlib.suppress(sqlite3.OperationalError),
            contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db,
        ):
            for where, text in decrypted_triggers(db, key):
                seen[where] = text
        with contextlib.suppress(Exception):
            state = cluster.run_state(MATRIX_DAG, run_id)
            if state in TERMINAL_RUN_STATES:
                return state, sorted(seen.items())
        time.sleep(0.5)
    raise AssertionError(f"run still {state} after {timeout}s\n{cluster.diagnostics(MATRIX_DAG, run_id)}")


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_secret_in_logs_database_files_or_triggers_after_every_failure_mode(tmp_path):
    keys = Secrets()
    work = tmp_path / "work"
    main = StandInConfig(
        seed=9,
        token=keys.token,
        # Read scope only: the pre-write checks pass and the first write is refused (403) mid-load,
        # so that failed run leaves a checkpoint to search.
        extra_tokens={keys.no_scope_token: ("crm.objects.contacts.read",)},
        oauth_apps=(OAuthApp(CLIENT_ID, keys.client_secret, keys.refresh_token, access_token_ttl_s=2),),
        missing_ratio=0.01,
        rate_limit=None,
        latency=LatencyConfig(base_ms=30),
        visibility_delay_s=15.0,
        request_log_size=100_000,
    )
    errors = StandInConfig(token=keys.errors_token, faults=FaultConfig(seed=1, error_5xx_ratio=1.0))
    with HubSpotStandIn(main) as hs, HubSpotStandIn(errors) as hs_5xx:
        write_pairs_csv(work / "good.csv", 1_500, seed=1, from_base=1_000_000)
        write_pairs_csv(work / "private.csv", 300, seed=2, from_base=50_000_000)
        (work / "bad.csv").write_text("from_id,to_id\n1,2\n3,not-a-number\n")
        env = {
            "AIRFLOW_CONN_HUBSPOT_DEFAULT": connection(hs.url, keys.token),
            "AIRFLOW_CONN_HS_BAD_TOKEN": connection(hs.url, keys.bad_token),
            "AIRFLOW_CONN_HS_NO_SCOPE": connection(hs.url, keys.no_scope_token),
            "AIRFLOW_CONN_HS_OAUTH": oauth_connection_json(
                hs, CLIENT_ID, keys.client_secret, keys.refresh_token
            ),
            "AIRFLOW_CONN_HS_OAUTH_BAD_REFRESH": oauth_connection_json(
                hs, CLIENT_ID, keys.client_secret, keys.bad_refresh_token
            ),
            "AIRFLOW_CONN_HS_5XX": connection(hs_5xx.url, keys.errors_token),
        }
        with airflow_cluster(dags={"secrets_matrix.py": matrix_dag(work)}, env=env) as cluster:
            cluster.wait_for_dag(MATRIX_DAG)
            cluster.unpause(MATRIX_DAG)
            run_id = cluster.trigger(MATRIX_DAG)
            state, triggers = wait_collecting_triggers(cluster, run_id, timeout=420)
            states = cluster.task_states(MATRIX_DAG, run_id)
            context = f"\nstates {states}\n{cluster.diagnostics(MATRIX_DAG, run_id)}"
            assert state == "failed", context  # some tasks fail on purpose
            assert states == EXPECTED_STATES, context
            assert triggers, f"the sensor never deferred, so no trigger kwargs were checked{context}"
            assert all("hs_oauth" in text for _, text in triggers), triggers  # really decrypted
            assert hs.stats.oauth_refreshes >= 3, "too few access tokens were issued to prove anything"
            where = {
                "airflow home (task logs, process logs, database pages)": list(texts_under(cluster.home)),
                "database tables": list(
                    database_texts(cluster.home / "airflow.db", cluster.env["AIRFLOW__CORE__FERNET_KEY"])
                ),
                "trigger kwargs while deferred": triggers,
                "failed-pairs files and checkpoints": list(texts_under(work / "out")),
                "connection test results (XCom)": [
                    (
                        "xcom connection_tests",
                        json.dumps(cluster.xcom(MATRIX_DAG, run_id, "connection_tests")),
                    )
                ],
            }
            everything = keys.all(hs, hs_5xx)
            leaks = {name: find_secrets(texts, everything) for name, texts in where.items()}
            assert {name: found for name, found in leaks.items() if found} == {}, context
            # the searches did look at something
            tables = dict(where["database tables"])
            assert "good.csv" in tables["db:rendered_task_instance_fields"]
            assert "sample" in tables["db:xcom"]
            assert any(
                "attempt=1.log" in path
                for path, _ in where["airflow home (task logs, process logs, database pages)"]
            )
            assert any(
                Path(path).name == "failed.jsonl" for path, _ in where["failed-pairs files and checkpoints"]
            )
            leftover_checkpoints = [
                p for p, _ in where["failed-pairs files and checkpoints"] if "checkpoints" in p
            ]
            assert leftover_checkpoints, "no failed run left a checkpoint to search"


# -- 2. the same in-process, through dag.test(): captured output and the session's home ------------
def test_no_secret_in_captured_output_or_session_home_in_process(airflow_home, monkeypatch, tmp_path, capfd):
    keys = Secrets()
    config = StandInConfig(
        token=keys.token,
        oauth_apps=(OAuthApp(CLIENT_ID, keys.client_secret, keys.refresh_token, access_token_ttl_s=2),),
        latency=LatencyConfig(base_ms=80),
        rate_limit=None,
        missing_ratio=0.02,
    )
    with HubSpotStandIn(config) as hs:
        pairs = write_pairs_csv(tmp_path / "pairs.csv", 1_000, seed=4)
        monkeypatch.setenv(
            "AIRFLOW_CONN_HS_OAUTH",
            oauth_connection_json(hs, CLIENT_ID, keys.client_secret, keys.refresh_token),
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_HS_OAUTH_BAD",
            oauth_connection_json(hs, CLIENT_ID, keys.client_secret, keys.bad_refresh_token),
        )
        monkeypatch.setenv("AIRFLOW_CONN_HS_BAD_TOKEN", connection(hs.url, keys.bad_token))
        with DAG(
            "secrets_in_process", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
        ) as dag:
            for task_id, conn_id in (
                ("ok", "hs_oauth"),
                ("bad_refresh", "hs_oauth_bad"),
                ("bad_token", "hs_bad_token"),
            ):
                BatchCreateAssociationsOperator(
                    task_id=task_id,
                    hubspot_conn_id=conn_id,
                    from_object_type="contacts",
                    to_object_type="companies",
                    pairs_path=str(pairs.path),
                    batch_size=10,
                    max_concurrency=2,
                    max_failed_ratio=0.2,
                    failed_pairs_path=str(tmp_path / "out" / f"{task_id}.jsonl"),
                    checkpoint_path=str(tmp_path / "out" / "checkpoints"),
                )
        dag_run = run_dag(dag)
        assert task_states(dag_run) == {"ok": "success", "bad_refresh": "failed", "bad_token": "failed"}
        assert task_results(dag_run)["ok"]["created"] > 0
        assert hs.stats.oauth_refreshes >= 2
        captured = capfd.readouterr()
        where = [("stdout", captured.out), ("stderr", captured.err)]
        where += list(texts_under(airflow_home))
        where += list(texts_under(tmp_path / "out"))
        assert "OAuth token refresh failed" in captured.out + captured.err  # the failures were logged
        assert find_secrets(where, keys.all(hs)) == []


# -- 3. transport: plain http, TLS verification, redirects ----------------------------------------
@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a socket to a non-loopback address."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else ""
        if host and not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"network access to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.mark.parametrize(
    "host",
    [
        "http://api.hubapi.com",
        "http://10.0.0.5:8080",
        "http://192.168.1.10",
        "http://127.0.0.1.nip.io",
        "http://localhost.example.com",
        "HTTP://API.HUBAPI.COM",
        "http://[2001:db8::1]",
    ],
)
def test_plain_http_to_a_host_that_is_not_loopback_is_refused(monkeypatch, no_network, host):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection(host, _secret("pat-na1")))
    hook = HubSpotHook(retry_budget_seconds=0)
    with pytest.raises(HubSpotConfigError, match="plain http"):
        hook.create_default_associations("contacts", "companies", [{"from": {"id": "1"}, "to": {"id": "2"}}])
    ok, message = HubSpotHook(retry_budget_seconds=0).test_connection()
    assert not ok and "http" in message


@pytest.mark.parametrize("host", ["http://127.0.0.1:{port}", "http://localhost:{port}"])
def test_plain_http_to_loopback_is_allowed_for_local_stand_ins(hubspot_standin, monkeypatch, host):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        connection(host.format(port=hubspot_standin.port), hubspot_standin.token),
    )
    assert HubSpotHook().test_connection()[0] is True


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 that no CA signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class UntrustedTlsServer:
    """A loopback HTTPS server with a self-signed certificate that records any HTTP bytes it receives."""

    def __init__(self, folder: Path) -> None:
        cert, key = _self_signed_certificate(folder)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.received: list[bytes] = []
        self.handshakes = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            with (
                contextlib.suppress(OSError, ssl.SSLError),
                self._context.wrap_socket(raw, server_side=True) as tls,
            ):
                self.handshakes += 1
                self.received.append(tls.recv(65536))
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            raw.close()

    def __enter__(self) -> UntrustedTlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()


@pytest.mark.parametrize(
    ("extra", "environment"),
    [
        ({}, {}),
        ({"verify": False}, {}),
        ({"verify": "false"}, {}),
        ({"verify_ssl": False, "ssl_verify": False, "insecure": True}, {}),
        ({}, {"CURL_CA_BUNDLE": ""}),
        ({}, {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""}),
        ({}, {"PYTHONHTTPSVERIFY": "0"}),
    ],
    ids=[
        "default",
        "verify-false",
        "verify-false-str",
        "other-spellings",
        "curl-bundle-empty",
        "bundles-empty",
        "pythonhttpsverify",
    ],
)
@pytest.mark.parametrize("auth", ["private-app", "oauth"])
def test_tls_verification_cannot_be_turned_off(monkeypatch, tmp_path, extra, environment, auth):
    """Against a server no CA vouches for, the request fails before any HTTP byte (so any secret) leaves."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    token, client_secret, refresh_token = _secret("pat-na1"), _secret("client"), _secret("refresh")
    with UntrustedTlsServer(tmp_path) as server:
        host = f"https://127.0.0.1:{server.port}"
        if auth == "oauth":
            extra = {
                **extra,
                "client_id": CLIENT_ID,
                "client_secret": client_secret,
                "refresh_token": refresh_token,
            }
            conn = connection(host, **extra)
        else:
            conn = connection(host, token, **extra)
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", conn)
        hook = HubSpotHook(retry_budget_seconds=0.5)
        if any(key in extra for key in ("verify", "verify_ssl", "ssl_verify", "insecure")):
            # Asking for verification off is refused outright, before any request.
            with pytest.raises(HubSpotConfigError, match="TLS verification always stays on"):
                hook.list_labels("contacts", "companies")
        else:
            assert hook.get_conn().verify is True
            # A certificate failure fails at once (no retries), naming TLS.
            with pytest.raises(HubSpotTlsError, match="TLS verification"):
                hook.list_labels("contacts", "companies")
        assert server.handshakes == 0 and server.received == []


@pytest.mark.parametrize("extra", [{"verify": False}, {"verify": "false"}, {"verify": 0}])
def test_a_connection_extra_that_disables_tls_verification_is_refused_or_warned_about(
    monkeypatch, caplog, capfd, extra
):
    """Verification stays on (above); the user who asked for it off must be told, not silently ignored."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT", connection("https://api.hubapi.com", _secret("pat-na1"), **extra)
    )
    refused = False
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        try:
            HubSpotHook().get_conn()
        except HubSpotConfigError as err:
            refused = "verif" in str(err).lower()
    told = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    told += [str(w.message) for w in raised]
    told += capfd.readouterr()
    assert refused or any("verif" in text.lower() for text in told), (
        "a connection extra asking to disable TLS verification was silently ignored"
    )


def test_a_certificate_failure_fails_at_once_and_says_so(monkeypatch, tmp_path):
    """A certificate no CA vouches for will not become valid on retry: fail fast with the reason."""
    with UntrustedTlsServer(tmp_path) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_HUBSPOT_DEFAULT", connection(f"https://127.0.0.1:{server.port}", _secret("pat"))
        )
        hook = HubSpotHook(retry_budget_seconds=5)
        started = time.monotonic()
        with pytest.raises(HubSpotTransportError) as caught:
            hook.list_labels("contacts", "companies")
        elapsed = time.monotonic() - started
    assert re.search(r"certificate|CERTIFICATE_VERIFY_FAILED|TLS", str(caught.value)), str(caught.value)
    assert hook.stats.retries == 0 and elapsed < 2, f"retried for {elapsed:.1f}s: {caught.value}"


class _Redirector(http.server.BaseHTTPRequestHandler):
    """Answers every request with a redirect to ``target``; records the Authorization it got."""

    target: ClassVar[str] = ""
    seen: ClassVar[list[str | None]] = []

    def _redirect(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(307)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _redirect

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def test_a_redirect_never_carries_the_token_elsewhere(hubspot_standin, monkeypatch):
    """A 307 from the API host (a hijacked proxy, say) must not make the client replay the token."""
    token = hubspot_standin.token
    handler: type[_Redirector] = type("Redirect", (_Redirector,), {"target": hubspot_standin.url, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_HUBSPOT_DEFAULT", connection(f"http://127.0.0.1:{server.server_port}", token)
        )
        hook = HubSpotHook(retry_budget_seconds=0)
        with pytest.raises(Exception) as caught:
            hook.create_default_associations(
                "contacts", "companies", [{"from": {"id": "1"}, "to": {"id": "2"}}]
            )
        assert "307" in str(caught.value) or "redirect" in str(caught.value).lower(), str(caught.value)
    finally:
        server.shutdown()
    assert handler.seen == [f"Bearer {token}"]  # the first host got it (it was configured) ...
    assert [r for r in hubspot_standin.requests] == []  # ... and nothing followed the redirect
