"""Start the stand-in's CLI in a process of its own and learn where it listens.

Why a helper: whoever needs the stand-in outside the current process (the demo, so that Airflow's
processes can reach it; the benchmarks, so that its CPU is not counted as the client's) has to start
``python -m airflow_hubspot_assoc.testing`` on a free port, wait for the one JSON line it prints once
it listens, and not hang when it never does. That is done here, once.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0
CLI_MODULE = "airflow_hubspot_assoc.testing"


class StandInStartError(RuntimeError):
    """The stand-in's process did not announce itself (crashed, bad config, or too slow)."""


def start_standin_process(
    config: Mapping[str, Any],
    config_path: Path,
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    new_session: bool = False,
    timeout_s: float = START_TIMEOUT_S,
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run the stand-in with ``config`` (``StandInConfig`` fields) on a free loopback port.

    :param config_path: where the config is written for the CLI.
    :param log_path: where the stand-in's log (its stderr) goes.
    :param new_session: start it in a process group of its own (to stop it with everything it started).
    :return: the process (the caller stops it) and its start-up line: ``url``, ``token``, ``connection``.
    :raises StandInStartError: no start-up line within ``timeout_s``; the process is stopped.
    """
    config_path.write_text(json.dumps(dict(config), indent=1), encoding="utf-8")
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_hubspot_assoc.testing",
                "--port",
                "0",
                "--config",
                str(config_path),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=new_session,
        )
    try:
        announced = _read_announcement(process, log_path, timeout_s)
    except StandInStartError:
        process.kill()
        process.wait(timeout=10)
        raise
    # Keep reading stdout so that the stand-in never blocks on a full pipe.
    assert process.stdout is not None
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process, announced


def _read_announcement(process: subprocess.Popen[str], log_path: Path, timeout_s: float) -> dict[str, Any]:
    """The one JSON line the CLI prints once it listens (read in a thread: ``readline`` cannot time out)."""
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    line = lines[0].strip() if lines else ""
    if lines and not lines[0]:  # end of output: the process is exiting; let it, to report its code
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    if not line:
        raise StandInStartError(
            f"the HubSpot stand-in did not start (exit code {process.poll()}); see {log_path}"
        )
    try:
        announced = json.loads(line)
    except ValueError:
        raise StandInStartError(
            f"the HubSpot stand-in printed {line[:200]!r} instead of its JSON line"
        ) from None
    missing = [key for key in ("url", "token", "connection") if key not in announced]
    if missing:
        raise StandInStartError(f"the HubSpot stand-in's start-up line has no {missing}: {sorted(announced)}")
    return dict(announced)
