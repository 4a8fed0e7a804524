"""Plumbing shared by the scenarios: client subprocesses, checks against targets, machine facts.

Every figure is measured in a process of its own (see ``client.py``), and every check records its
value, its target and by how much it is met or missed, so that ``results.json`` can be read without
the code that produced it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.standin import StandInProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Inputs per request in every scenario (HubSpot's own cap for batch create).
BATCH_SIZE = 100
CLIENT_TIMEOUT_S = 3_600.0


@dataclass
class Check:
    """One figure against its target: ``value op target`` where ``op`` is ``<=`` or ``>=``."""

    scenario: str
    case: str
    metric: str
    value: float
    op: str
    target: float
    unit: str = ""
    note: str = ""
    passed: bool = field(init=False)
    margin: str = field(init=False)

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">="):
            raise ValueError(f"op must be <= or >=, got {self.op!r}")
        self.passed = self.value <= self.target if self.op == "<=" else self.value >= self.target
        gap = self.target - self.value if self.op == "<=" else self.value - self.target
        word = "met" if self.passed else "missed"
        self.margin = f"{word} by {abs(gap):,.3g}{self.unit}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


@dataclass
class CaseResult:
    """One case of a scenario: its parameters, raw client figures, derived figures and checks."""

    name: str
    params: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (client samples included, for re-plotting)."""
        return {
            "name": self.name,
            "params": self.params,
            "figures": self.figures,
            "checks": [c.as_dict() for c in self.checks],
            "passed": all(c.passed for c in self.checks),
            "runs": self.runs,
        }


class Runner:
    """Starts client processes against a stand-in and collects their result files."""

    def __init__(self, out: Path, *, verbose: bool = True) -> None:
        self.out = out
        self.work = out / "work"
        # Specs, results and logs of this invocation only: stale files of an earlier run would mislead.
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)
        self.verbose = verbose
        self._serial = 0

    def say(self, text: str) -> None:
        """Progress for the person waiting at the terminal."""
        if self.verbose:
            print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def env(self, standin: StandInProcess) -> dict[str, str]:
        """The environment of a client: an isolated AIRFLOW_HOME and the stand-in's connection."""
        env = dict(os.environ)
        home = self.out / "airflow-home"
        home.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_CONN_HUBSPOT_DEFAULT": standin.connection,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            }
        )
        return env

    def _spec(
        self, kind: str, standin: StandInProcess, pairs_path: Path, label: str, extra: dict[str, Any]
    ) -> Path:
        self._serial += 1
        stem = self.work / f"{self._serial:03d}-{label}-{kind}"
        spec = {
            "kind": kind,
            "pairs_path": str(pairs_path),
            "url": standin.url,
            "token": standin.token,
            "result_path": str(stem.with_suffix(".result.json")),
            **extra,
        }
        path = stem.with_suffix(".spec.json")
        path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
        return path

    def run(
        self, kind: str, standin: StandInProcess, pairs_path: Path, label: str, **extra: Any
    ) -> dict[str, Any]:
        """Run one client to completion; return its result with the stand-in's counters for the run."""
        return self.run_together([(kind, pairs_path, extra)], standin, label)[0]

    def run_together(
        self, clients: list[tuple[str, Path, dict[str, Any]]], standin: StandInProcess, label: str
    ) -> list[dict[str, Any]]:
        """Run clients in parallel processes that start sending at the same moment.

        Each client sets itself up (imports, operator) and prints READY; only when all are ready do
        they all get the start signal, so that import time does not skew who gets the rate limit.
        """
        standin.wait_for_empty_window()
        standin.reset()
        standin.cpu_since_mark()
        procs: list[tuple[subprocess.Popen[str], Path, Path]] = []
        for kind, pairs_path, extra in clients:
            spec_path = self._spec(kind, standin, pairs_path, label, {**extra, "wait_for_go": True})
            log_path = spec_path.with_suffix("").with_suffix(".log")
            log = log_path.open("w", encoding="utf-8")
            env = self.env(standin)
            if extra.get("tmpdir"):  # a host of its own: its own temporary folder, so its own peer board
                env["TMPDIR"] = str(extra["tmpdir"])
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.client", str(spec_path)],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            log.close()
            procs.append((proc, spec_path, log_path))
        setup_started = time.monotonic()
        for proc, _, log_path in procs:
            if not _await_ready(proc, log_path):
                for other, _, _ in procs:
                    if other.poll() is None:
                        other.kill()
                raise RuntimeError(f"a {label} client failed to start; see {log_path}:\n{_tail(log_path)}")
        setup = time.monotonic() - setup_started
        self.say(f"  {label}: {len(procs)} client(s) set up in {setup:.1f} s; sending")
        # Drain every client's stdout (the operator logs there) so that none blocks on a full pipe.
        drains = [
            threading.Thread(target=_drain, args=(proc, log_path), daemon=True) for proc, _, log_path in procs
        ]
        for drain in drains:
            drain.start()
        for proc, _, _ in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for (proc, spec_path, log_path), drain in zip(procs, drains, strict=True):
            code = proc.wait(timeout=CLIENT_TIMEOUT_S)
            drain.join(timeout=30)
            if code != 0:
                raise RuntimeError(f"a {label} client exited with {code}; see {log_path}:\n{_tail(log_path)}")
            spec = json.loads(spec_path.read_text(encoding="utf-8"))
            results.append(json.loads(Path(spec["result_path"]).read_text(encoding="utf-8")))
        standin.last_request_at = time.time()
        stats = standin.stats()
        standin_cpu = standin.cpu_since_mark()
        span = max(r["finished"] for r in results) - min(r["started"] for r in results)
        server = {
            "requests": stats.get("requests_total", 0),
            "rate_limited": stats.get("rate_limited", 0),
            "inputs_received": stats.get("inputs_received", 0),
            "associations_written": stats.get("associations_written", 0),
            "spec_violations": stats.get("spec_violations", 0),
            "spec_violation_messages": stats.get("spec_violation_messages", [])[:5],
            "peak_concurrency": stats.get("peak_concurrency", 0),
            "by_endpoint_status": stats.get("by_endpoint_status", {}),
            "cpu_s": round(standin_cpu, 3),
            "cpu_utilisation": round(standin_cpu / span, 3) if span > 0 else None,
        }
        for result in results:
            result["server"] = server
        return results


def _await_ready(proc: subprocess.Popen[str], log_path: Path) -> bool:
    """Read a client's stdout up to its READY line (anything before it goes to its log)."""
    assert proc.stdout is not None
    with log_path.open("a", encoding="utf-8") as log:
        for line in proc.stdout:
            if line.strip() == "READY":
                return True
            log.write(line)
    return False


def _drain(proc: subprocess.Popen[str], log_path: Path) -> None:
    assert proc.stdout is not None
    with log_path.open("a", encoding="utf-8") as log:
        for line in proc.stdout:
            log.write(line)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def trailing_rate(
    samples: list[list[float]], window: float, step: float = 0.5, end: float | None = None
) -> list[tuple[float, float]]:
    """Pairs per second over the trailing ``window`` seconds, from cumulative ``[t, created, ...]`` samples.

    The window is fixed (not shortened at the start) so that a run that bursts a whole rolling
    window at t = 0 shows the rate the limit allows, not a spike. ``end`` extends the series past
    the last sample (to put several clients on one time grid).
    """
    if not samples:
        return []
    points = [(0.0, 0.0)] + [(float(s[0]), float(s[1])) for s in samples]

    def created_at(t: float) -> float:
        if t <= 0:
            return 0.0
        # Cumulative counts change in steps; the last sample at or before t is the count at t.
        lo, hi = 0, len(points) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if points[mid][0] <= t:
                lo = mid
            else:
                hi = mid - 1
        return points[lo][1]

    end = points[-1][0] if end is None else end
    series = []
    t = step
    while t <= end + 1e-9:
        series.append((round(t, 3), (created_at(t) - created_at(t - window)) / window))
        t += step
    return series


def created_between(samples: list[list[float]], started: float, start: float, end: float) -> float:
    """Pairs a client created between two epoch times, from its cumulative samples."""

    def at(epoch: float) -> float:
        value = 0.0
        for sample in samples:
            if started + sample[0] <= epoch:
                value = sample[1]
            else:
                break
        return value

    return at(end) - at(start)


def machine_info() -> dict[str, Any]:
    """What the figures were measured on: cores, CPU model, memory, load, Python and package versions."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    packages: dict[str, str | None] = {}
    for name in (
        "airflow-hubspot-assoc",
        "apache-airflow",
        "apache-airflow-task-sdk",
        "apache-airflow-providers-http",
        "requests",
        "urllib3",
        "hubspot-api-client",
        "psutil",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "load_average": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": packages,
    }


def standin_config(
    *,
    rate_limit: int | None,
    latency_ms: float,
    jitter_ms: float,
    interval_ms: int = 10_000,
    request_log_size: int = 100,
) -> dict[str, Any]:
    """A stand-in config for benchmarks: latency ``latency_ms`` +/- ``jitter_ms``, writes counted only.

    The stand-in draws ``base + uniform(0, jitter)``; a mean of L with +/- J is base L - J, jitter 2J.
    Stored associations and response validation are off: at millions of pairs they would make the
    stand-in, not the client, the thing being measured (requests are still checked against the spec).
    """
    return {
        "rate_limit": None
        if rate_limit is None
        else {"max_requests": rate_limit, "interval_ms": interval_ms, "daily": 100_000_000},
        "latency": {"base_ms": max(0.0, latency_ms - jitter_ms), "jitter_ms": 2 * jitter_ms},
        "store_associations": False,
        "validate_responses": False,
        "request_log_size": request_log_size,
    }


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
