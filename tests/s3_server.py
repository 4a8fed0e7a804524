"""A real S3 API on loopback for tests: ``moto`` in server mode, as a separate process.

Why a process and not moto's in-process mocks: the package reaches S3 the way users' workers do,
through Airflow's ``ObjectStoragePath``, the amazon provider's ``s3fs`` file system and an Airflow
AWS connection whose ``endpoint_url`` points at the server; subprocesses (Airflow components, a task
killed with SIGKILL) reach the same server. Nothing is mocked inside the process under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONN_ID = "aws_default"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    """A running moto server and the Airflow connection that reaches it."""

    endpoint_url: str
    log_path: Path

    def connection_json(self) -> str:
        """``AIRFLOW_CONN_AWS_DEFAULT``: the server's endpoint and (moto's dummy) keys."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
            }
        )

    def client(self) -> Any:
        """A boto3 S3 client of the server, for set-up and for checking what a test left behind."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=REGION,
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` (all pages)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, bucket: str, key: str) -> str:
        return str(self.client().get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))

    def write(self, bucket: str, key: str, text: str) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))


@contextlib.contextmanager
def moto_s3_server(timeout: float = 60.0) -> Iterator[S3Server]:
    """Start ``moto`` in server mode on a free loopback port; stop it (its process group) at exit."""
    port = _free_port()
    log_path = Path(tempfile.mkdtemp(prefix="moto-")) / "moto.log"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = S3Server(f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited with {process.returncode}: {log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not answer within {timeout}s") from None
                time.sleep(0.1)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
