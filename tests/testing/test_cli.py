"""The stand-in as a process: ``python -m airflow_hubspot_assoc.testing``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import requests

from airflow_hubspot_assoc.testing.process import StandInStartError, start_standin_process
from tests.testing.support import create_inputs, path, session


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_hubspot_assoc.testing", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_serves_until_sigterm(tmp_path):
    config = tmp_path / "standin.json"
    config.write_text(
        json.dumps(
            {
                "rate_limit": {"max_requests": 7, "interval_ms": 2000},
                "latency": {"base_ms": 1},
                "faults": {"seed": 1},
                "cancel_from_ids": ["66"],
                "extra_tokens": {"pat-na1-reader": ["crm.objects.contacts.read"]},
                "oauth_apps": [{"client_id": "c", "client_secret": "s", "refresh_token": "r"}],
                "labels": [{"from_type": "contacts", "to_type": "companies", "label": "Alumni"}],
            }
        )
    )
    port_file = tmp_path / "url"
    process = start(
        "--config", str(config), "--port-file", str(port_file), "--api-version", "2026-03", "--stats-on-exit"
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["url"].startswith("http://127.0.0.1:")
        assert port_file.read_text().strip() == ready["url"]
        connection = json.loads(ready["connection"])
        assert connection == {
            "conn_type": "hubspot",
            "host": ready["url"],
            "password": ready["token"],
            "extra": {"api_version": "2026-03"},
        }
        s = session(ready["token"])
        created = s.post(
            ready["url"] + path("v4", "batch_create"), json=create_inputs([("1", "2")]), timeout=5
        )
        assert created.status_code == 201
        assert created.headers["X-HubSpot-RateLimit-Max"] == "7"
        labels = s.get(ready["url"] + path("v4", "labels"), timeout=5).json()["results"]
        assert any(label.get("label") == "Alumni" for label in labels)
        reader = session("pat-na1-reader")
        denied = reader.post(
            ready["url"] + path("v4", "batch_create"), json=create_inputs([("1", "2")]), timeout=5
        )
        assert denied.status_code == 403
        token = requests.post(
            ready["url"] + "/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "client_id": "c",
                "client_secret": "s",
                "refresh_token": "r",
            },
            timeout=5,
        )
        assert token.status_code == 200
        stats = requests.get(ready["url"] + "/__standin__/stats", timeout=5).json()
        assert stats["requests_total"] == 4
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["requests_total"] == 4
    assert final["response_violations"] == 0


def test_cli_port_and_sigint(tmp_path):
    stats_file = tmp_path / "stats.json"
    probe = start("--port", "0", "--stats-on-exit", str(stats_file))
    try:
        assert probe.stdout is not None
        url = json.loads(probe.stdout.readline())["url"]
        assert requests.get(url + "/__standin__/health", timeout=5).json() == {"status": "ok"}
    finally:
        probe.send_signal(signal.SIGINT)
        probe.communicate(timeout=10)
    assert probe.returncode == 0
    assert json.loads(stats_file.read_text())["requests_total"] == 0


def test_cli_rejects_a_bad_config(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"rate_limits": {}}))
    process = start("--config", str(config))
    out, err = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "rate_limits" in err
    assert out == ""
    config.write_text(json.dumps({"host": "0.0.0.0"}))
    process = start("--config", str(config))
    _, err = process.communicate(timeout=10)
    assert process.returncode == 2 and "loopback" in err


def test_start_standin_process_hands_back_a_serving_stand_in(tmp_path):
    process, announced = start_standin_process(
        {"rate_limit": {"max_requests": 7, "interval_ms": 2000}}, tmp_path / "c.json", tmp_path / "s.log"
    )
    try:
        answer = requests.get(
            announced["url"] + "/crm/associations/v4/contacts/companies/labels",
            headers={"Authorization": f"Bearer {announced['token']}"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert answer.headers["X-HubSpot-RateLimit-Max"] == "7"  # the config was the one passed
        assert json.loads(announced["connection"])["host"] == announced["url"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_start_standin_process_fails_with_the_log_when_the_stand_in_cannot_start(tmp_path):
    with pytest.raises(StandInStartError, match=r"did not start \(exit code 2\); see .*s\.log"):
        start_standin_process({"rate_limits": {}}, tmp_path / "c.json", tmp_path / "s.log")
    assert "rate_limits" in (tmp_path / "s.log").read_text()
