"""The demo (README command 1, ``make demo``) run exactly as a user runs it, plus its clean-up on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "run.py"

pytestmark = pytest.mark.slow


def demo_environment() -> dict[str, str]:
    """The environment of a user's shell: none of this test session's Airflow settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HUBSPOT_EXAMPLE"))}


def number(summary: str, label: str) -> int:
    match = re.search(rf"^\s+{label}\s+([\d,]+)", summary, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{summary}"
    return int(match.group(1).replace(",", ""))


def port_is_closed(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return False
    except OSError:
        return True


def test_demo_runs_a_dag_against_the_standin_and_summarises_it():
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        cwd=ROOT,
        env=demo_environment(),
        capture_output=True,
        text=True,
        timeout=420,
    )
    elapsed = time.monotonic() - started
    output = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{output}\n{result.stderr[-3000:]}"
    summary = output[output.index("== Summary") :]
    assert "DAG run succeeded" in summary

    read = number(summary, "pairs read")
    created, failed = number(summary, "created"), number(summary, "failed")
    assert read == 5_000
    assert created + failed == read
    assert 0.005 * read <= failed <= 0.05 * read, "about 2% of the pairs name records that do not exist"
    # HubSpot's reasons, grouped, with the category first.
    reasons = re.findall(r"^\s+([\d,]+)\s+VALIDATION_ERROR: (.+)$", summary, re.MULTILINE)
    assert reasons and sum(int(n.replace(",", "")) for n, _ in reasons) == failed
    requests = number(summary, "requests")
    assert requests >= read // 100
    # The stand-in's 429s and the window they come from: the demo's loads and sensors share one app's
    # window and keep to the 2% of 429s the README's performance targets allow.
    throttled = number(summary, "429s")
    assert re.search(r"^\s+429s\s+[\d,]+\s+\(limit 100 requests per 10 s; [\d,]+ retries\)", summary, re.M)
    assert throttled <= 0.02 * requests, f"{throttled} of {requests} requests answered 429"
    assert re.search(r"^\s+throughput\s+[\d,]+\s+pairs/s", summary, re.MULTILINE)
    assert number(summary, "confirmed") == created

    # The failed pairs are where the summary says, one JSON line per failed pair.
    where = re.search(r"^\s+failed pairs\s+(\S+)", summary, re.MULTILINE)
    assert where, summary
    failed_file = ROOT / where.group(1)
    assert failed_file.exists()
    failed_lines = sum(
        len(p.read_text().splitlines()) for p in failed_file.parent.glob("_part-*.failed.jsonl")
    )
    assert failed_lines == failed

    # Everything it started is gone.
    url = re.search(r"listening on (http://\S+);", output)
    assert url, output
    assert port_is_closed(url.group(1))
    assert elapsed < 300, f"the demo took {elapsed:.0f} s"


def test_ctrl_c_stops_everything_the_demo_started(tmp_path):
    process = subprocess.Popen(
        [sys.executable, str(DEMO), "--workdir", str(tmp_path / "demo")],
        cwd=ROOT,
        env=demo_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    url = None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = re.search(r"listening on (http://\S+);", line)
            if match:
                url = match.group(1)
            if line.startswith("4/4"):
                time.sleep(3)  # let `airflow dags test` get going
                process.send_signal(signal.SIGINT)
                break
        rest, _ = process.communicate(timeout=60)
        lines.append(rest)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(lines)
    assert process.returncode == 130, output
    assert "Interrupted" in output
    assert url is not None, output
    assert port_is_closed(url)


def test_demo_exits_non_zero_when_the_dag_run_fails(tmp_path):
    # A fifth of the record ids missing: every load is over its max_failed_ratio and fails.
    result = subprocess.run(
        [sys.executable, str(DEMO), "--missing-ratio", "0.2", "--workdir", str(tmp_path / "demo")],
        cwd=ROOT,
        env=demo_environment(),
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert result.returncode == 1, f"{result.stdout}\n{result.stderr[-3000:]}"
    summary = result.stdout[result.stdout.index("== Summary") :]
    assert "DAG run FAILED" in summary
    assert "create_associations[0]=failed" in summary
    assert number(summary, "failed") > 0.2 * 5_000
    assert "The DAG run failed" in result.stderr
    assert list((tmp_path / "demo" / "data" / "export").glob("_part-*.failed.jsonl"))
