"""The demo behind ``make demo``: show the package's main job end to end in about a minute.

It loads a sharded export of contact -> company pairs into a HubSpot stand-in through real Airflow,
so that nobody needs a HubSpot account to see what the package does:

1. writes a few thousand sample pairs as CSV parts under ``.demo/data/export`` (about 2 % of them
   name records that the stand-in says do not exist, so failures show);
2. starts the HubSpot stand-in as a subprocess on a free loopback port, with HubSpot-like latency
   and rate limit (``python -m airflow_hubspot_assoc.testing``);
3. points a throw-away Airflow (``.demo/airflow``: SQLite database, dags folder ``example_dags``) at
   it through ``AIRFLOW_CONN_HUBSPOT_DEFAULT`` and runs ``airflow dags test example_hubspot_files``;
4. prints what happened: pairs read, created and failed (HubSpot's reasons, grouped), requests,
   429s, throughput, and where the failed pairs were written.

Everything it starts is stopped on the way out, also on Ctrl-C or failure; running it again starts
from fresh data and a fresh stand-in. The exit code is non-zero when the DAG run failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_hubspot_assoc.testing.process import StandInStartError, start_standin_process

ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "example_hubspot_files"
CREATE_TASK = "create_associations"
CONFIRM_TASK = "confirm_associations"
STANDIN_START_TIMEOUT_S = 60.0
# A demo has to finish; a run that takes this long is stuck.
DAG_TEST_TIMEOUT_S = 600.0

#: HubSpot-like behaviour: ~150 ms per request (100-200 ms) and the lowest rate-limit tier.
STANDIN_CONFIG: dict[str, Any] = {
    "latency": {"base_ms": 100.0, "jitter_ms": 100.0},
    "rate_limit": {"max_requests": 100, "interval_ms": 10_000},
    "seed": 2026,
}

# The lines of the Airflow run worth showing live (every line goes to the log file).
_LIVE_LINES = re.compile(
    r"\[DAG TEST\] starting task_id"
    r"|(?:COMPLETE|PROCESSING|PENDING|CANCELED)(?: \(dry run\))?: [\d,]+ pairs read"
    r"|All associations are visible|Deferring:|\[error|Traceback"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DemoError(Exception):
    """Something the demo needs did not work; the message says what and where the log is."""


@dataclass
class Outcome:
    """What the demo learned from the DAG run, the stand-in and the files."""

    state: str
    run_seconds: float
    records: list[dict[str, Any]] = field(default_factory=list)
    create_seconds: list[float] = field(default_factory=list)
    confirmations: list[dict[str, Any]] = field(default_factory=list)
    standin: dict[str, Any] = field(default_factory=dict)
    task_states: dict[str, str] = field(default_factory=dict)


# -- the sample export -----------------------------------------------------------------------------
def write_export(folder: Path, pairs: int, parts: int, seed: int) -> int:
    """Write ``pairs`` contact -> company pairs as ``parts`` CSV parts plus ``_SUCCESS``; return the count."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    companies = [2_000_000_000 + rng.randrange(10_000_000) for _ in range(max(pairs // 6, 1))]
    rows: list[tuple[int, int]] = []
    contact = 10_000_000
    while len(rows) < pairs:
        contact += rng.randint(1, 9)
        # Most contacts work for one company, some for two.
        for company in rng.sample(companies, 2 if rng.random() < 0.15 else 1):
            rows.append((contact, company))
    rows = rows[:pairs]
    per_part = -(-pairs // parts)
    for index in range(parts):
        chunk = rows[index * per_part : (index + 1) * per_part]
        with (folder / f"part-{index:05d}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["from_id", "to_id"])
            writer.writerows(chunk)
    (folder / "_SUCCESS").write_text("", encoding="utf-8")
    return len(rows)


# -- processes -------------------------------------------------------------------------------------
def clean_environment() -> dict[str, str]:
    """The caller's environment without Airflow settings, so no outside configuration leaks in."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}


def stop_process(process: subprocess.Popen[Any] | None, name: str) -> None:
    """Stop a process this demo started (and its process group): TERM, then KILL after 10 s."""
    if process is None or process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
    print(f"warning: could not stop the {name} (pid {process.pid})", file=sys.stderr)


@contextmanager
def standin(workdir: Path, missing_ratio: float, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Run the HubSpot stand-in CLI on a free loopback port; yield its start-up line (url, token, ...)."""
    try:
        process, info = start_standin_process(
            {**STANDIN_CONFIG, "missing_ratio": missing_ratio},
            workdir / "standin.json",
            workdir / "logs" / "standin.log",
            env=env,
            cwd=ROOT,
            new_session=True,
            timeout_s=STANDIN_START_TIMEOUT_S,
        )
    except StandInStartError as err:
        raise DemoError(f"The demo cannot start: {err}") from None
    try:
        yield info
    finally:
        stop_process(process, "HubSpot stand-in")


def run_logged(command: list[str], env: dict[str, str], log_path: Path, *, live: bool = False) -> int:
    """Run an Airflow command with its output in ``log_path``; echo the interesting lines when ``live``.

    The command runs in a process group of its own, so that stopping it (on Ctrl-C, say) also stops
    whatever it started, and nothing else.
    """
    name = " ".join(command[2:5])
    process: subprocess.Popen[str] | None = None
    with log_path.open("w", encoding="utf-8") as log:
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
            deadline = time.monotonic() + DAG_TEST_TIMEOUT_S
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                if live and _LIVE_LINES.search(line):
                    print("   " + _shorten_log_line(line), flush=True)
                if time.monotonic() > deadline:
                    raise DemoError(f"`{name}` took more than {DAG_TEST_TIMEOUT_S:.0f} s")
            return process.wait()
        finally:
            stop_process(process, f"`{name}`")


def _shorten_log_line(line: str) -> str:
    """Keep a log line's message: drop the ANSI colours, the timestamp and the trailing logger fields."""
    text = _ANSI.sub("", line).strip()
    text = re.sub(r"^\S+Z \[\w+\s*\]\s*", "", text)
    text = re.sub(r"\s+\[[\w.]+\](?: \w+=.*)?$", "", text)
    text = re.sub(r"\s+(loc|ti|ti_id|correlation_id)=\S+.*$", "", text)
    started = re.match(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)", text)
    if started:
        task, index = started.groups()
        return f"> {task}" + (f"[{index}]" if index != "-1" else "")
    return "  " + text[:150]


# -- reading the outcome ---------------------------------------------------------------------------
def read_outcome(workdir: Path, run_seconds: float, standin_url: str, token: str | None) -> Outcome:
    """Read the latest run of the DAG (state, XCom records, durations) and the stand-in's counters."""
    # Airflow reads AIRFLOW_HOME at import, so it is imported only now, after the environment is set.
    from airflow.models.dagrun import DagRun

    runs = DagRun.find(dag_id=DAG_ID)
    if not runs:
        raise DemoError(f"No run of {DAG_ID} in {workdir / 'airflow'}")
    run = max(runs, key=lambda r: r.run_after)
    outcome = Outcome(state=str(run.state), run_seconds=run_seconds)
    for ti in sorted(run.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        outcome.task_states[key] = str(ti.state)
        if ti.task_id not in (CREATE_TASK, CONFIRM_TASK):
            continue
        value = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        if not isinstance(value, dict):
            continue
        if ti.task_id == CREATE_TASK:
            outcome.records.append(value)
            outcome.create_seconds.append(_loading_seconds(value, ti.duration))
        else:
            outcome.confirmations.append(value)
    outcome.standin = _standin_stats(standin_url, token)
    return outcome


def _loading_seconds(record: dict[str, Any], task_seconds: float | None) -> float:
    """How long a load took from its request to HubSpot's last answer (the task's duration otherwise)."""
    try:
        started = datetime.fromisoformat(str(record["requestedAt"]).replace("Z", "+00:00"))
        ended = datetime.fromisoformat(str(record["completedAt"]).replace("Z", "+00:00"))
        seconds = (ended - started).total_seconds()
        if seconds > 0:
            return seconds
    except (KeyError, TypeError, ValueError):
        pass
    return float(task_seconds or 0.0)


def _standin_stats(url: str, token: str | None) -> dict[str, Any]:
    """The stand-in's own counters (every request it answered, 429s included); empty if unavailable."""
    request = urllib.request.Request(url.rstrip("/") + "/__standin__/stats")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            data = json.load(answer)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def failure_reasons(paths: list[str]) -> Counter[tuple[str, str]]:
    """Group the failed pairs of every failed-pairs file by category and message (ids masked)."""
    reasons: Counter[tuple[str, str]] = Counter()
    for path in paths:
        file = Path(path)
        if not file.exists():
            continue
        with file.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                entry = json.loads(line)
                message = re.sub(r"\d{2,}", "<id>", str(entry.get("message", "")))
                reasons[(str(entry.get("category", "?")), message)] += 1
    return reasons


# -- the summary -----------------------------------------------------------------------------------
def print_summary(outcome: Outcome, workdir: Path, generated: int, parts: int) -> None:
    """Print a short, readable account of the run."""
    records = outcome.records

    def total_of(key: str) -> int:
        return sum(int(r.get(key) or 0) for r in records)

    def rel(path: str | Path) -> str:
        with suppress(ValueError):
            return str(Path(path).resolve().relative_to(ROOT))
        return str(path)

    total, created, failed = total_of("total"), total_of("created"), total_of("failed")
    invalid, duplicates = total_of("invalid"), total_of("duplicates")
    loading = sum(outcome.create_seconds)
    # From the folder rather than the records: a load that failed returned no record, but wrote its file.
    failed_files = sorted(str(p) for p in (workdir / "data" / "export").glob("_*.failed.jsonl"))
    reasons = failure_reasons(failed_files)
    loads = [k for k in outcome.task_states if k.startswith(f"{CREATE_TASK}[")]
    failed_loads = [k for k in loads if outcome.task_states[k] != "success"]
    limit = STANDIN_CONFIG["rate_limit"]
    window_s = limit["interval_ms"] // 1000
    state = "succeeded" if outcome.state == "success" else outcome.state.upper()

    print()
    print(f"== Summary: {DAG_ID}, DAG run {state} ==")
    export = rel(workdir / "data" / "export")
    print(f"  pairs read   {total:>7,}  from {len(records)} of {parts} CSV parts in {export}")
    if failed_loads:
        print(
            f"               {len(failed_loads)} of {len(loads)} loads failed and returned no record: "
            "'pairs read' and 'created' count only the others"
        )
    print(f"  created      {created:>7,}")
    if failed_loads:
        failed = sum(reasons.values())
    share = f" ({failed / generated:.1%}), HubSpot refused them" if failed and generated else ""
    print(f"  failed       {failed:>7,}{share}")
    if invalid or duplicates:
        print(f"  invalid      {invalid:>7,}  (duplicates dropped: {duplicates:,})")
    for (category, message), count in reasons.most_common(5):
        print(f"    {count:>9,}  {category}: {message[:80]}")
    if len(reasons) > 5:
        print(f"               ... and {len(reasons) - 5} more reasons")

    by_endpoint: Counter[str] = Counter()
    for key, count in (outcome.standin.get("by_endpoint_status") or {}).items():
        by_endpoint[str(key).split(":", 1)[0]] += int(count)
    writes = by_endpoint["batch_create"] + by_endpoint["batch_associate_default"]
    requests = outcome.standin.get("requests_total", total_of("requests"))
    throttled = outcome.standin.get("rate_limited", total_of("throttled"))
    detail = (
        f"{writes:,} batch writes, {by_endpoint['batch_read']:,} batch reads (sensors)" if by_endpoint else ""
    )
    print(f"  requests     {requests:>7,}  {detail}")
    print(
        f"  429s         {throttled:>7,}  (limit {limit['max_requests']} requests per {window_s} s; "
        f"{total_of('retries'):,} retries)"
    )
    if loading > 0:
        pace = (created + failed) / loading
        print(
            f"  throughput   {pace:>7,.0f}  pairs/s while loading ({created + failed:,} pairs in "
            f"{loading:.1f} s, {len(records)} mapped tasks, ~150 ms per request)"
        )
        ceiling = limit["max_requests"] * 100 // window_s
        print(
            f"{'':24}sustained, {limit['max_requests']} requests per {window_s} s of 100 pairs "
            f"cap a HubSpot app at ~{ceiling:,} pairs/s"
        )
    if outcome.confirmations:
        confirmed = sum(int(c.get("confirmed") or 0) for c in outcome.confirmations)
        print(f"  confirmed    {confirmed:>7,}  read back by {len(outcome.confirmations)} sensors")
    print(
        f"  run time     {outcome.run_seconds:>7.1f}  s of `airflow dags test`, Airflow's start-up included"
    )
    if failed_files:
        more = f" (+{len(failed_files) - 1} more, one per part)" if len(failed_files) > 1 else ""
        print(f"  failed pairs {rel(failed_files[0])}{more}")
    not_ok = {k: v for k, v in outcome.task_states.items() if v != "success"}
    if not_ok:
        print("  not successful: " + ", ".join(f"{k}={v}" for k, v in not_ok.items()))
    print(f"  logs         {rel(workdir / 'logs')}/")


# -- main --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The demo's few knobs; the defaults are what ``make demo`` runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=5_000, help="pairs to generate (default 5,000)")
    parser.add_argument("--parts", type=int, default=4, help="CSV parts to split them into (default 4)")
    parser.add_argument(
        "--missing-ratio",
        type=float,
        default=0.01,
        help="share of record ids the stand-in says do not exist (default 0.01: ~2%% of pairs fail)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=ROOT / ".demo", help="where everything goes (default .demo)"
    )
    args = parser.parse_args(argv)
    if args.pairs < 1 or not 1 <= args.parts <= args.pairs or not 0 <= args.missing_ratio < 0.5:
        parser.error("need --pairs >= 1, 1 <= --parts <= --pairs and 0 <= --missing-ratio < 0.5")
    return args


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit code (0 success, 1 DAG run failed, 2 set-up failed)."""
    args = parse_args(argv)
    workdir: Path = args.workdir.resolve()
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    started = time.monotonic()
    try:
        return _run(args, workdir)
    except KeyboardInterrupt:
        print("\nInterrupted: everything the demo started has been stopped.", file=sys.stderr)
        return 130
    except DemoError as err:
        print(f"\nThe demo could not run: {err}", file=sys.stderr)
        return 2
    finally:
        print(f"(demo took {time.monotonic() - started:.0f} s)")


def _run(args: argparse.Namespace, workdir: Path) -> int:
    home = workdir / "airflow"
    logs = workdir / "logs"
    export = workdir / "data" / "export"
    for folder in (home, logs):
        folder.mkdir(parents=True, exist_ok=True)
    env = clean_environment()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "HUBSPOT_EXAMPLE_EXPORT_DIR": str(export),
            # The stand-in shows associations at once; no need to wait 30 s between read-backs.
            "HUBSPOT_EXAMPLE_POKE_INTERVAL": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    airflow = [sys.executable, "-m", "airflow"]

    print(f"1/4 Writing {args.pairs:,} sample contact -> company pairs as {args.parts} CSV parts ...")
    generated = write_export(export, args.pairs, args.parts, seed=7)

    print(
        "2/4 Preparing a throw-away Airflow (SQLite) in "
        + str(home.relative_to(ROOT) if home.is_relative_to(ROOT) else home)
    )
    if run_logged([*airflow, "db", "migrate"], env, logs / "airflow-db-migrate.log") != 0:
        raise DemoError(f"`airflow db migrate` failed; see {logs / 'airflow-db-migrate.log'}")

    print("3/4 Starting the HubSpot stand-in (~150 ms per request, 100 requests per 10 s) ...")
    with standin(workdir, args.missing_ratio, env) as info:
        env["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = (
            info["connection"] if isinstance(info["connection"], str) else json.dumps(info["connection"])
        )
        print(f"    listening on {info['url']}; AIRFLOW_CONN_HUBSPOT_DEFAULT points at it")
        print(f"4/4 Running `airflow dags test {DAG_ID}` (full log: {logs / 'dags-test.log'}) ...")
        conf = json.dumps({"export_dir": str(export)})
        run_started = time.monotonic()
        code = run_logged(
            [*airflow, "dags", "test", DAG_ID, "-c", conf], env, logs / "dags-test.log", live=True
        )
        run_seconds = time.monotonic() - run_started
        # This process reads the run from the same database: same Airflow settings, nothing else.
        for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith("AIRFLOW")})
        try:
            outcome = read_outcome(workdir, run_seconds, info["url"], info.get("token"))
        except DemoError:
            if code != 0:
                raise DemoError(
                    f"`airflow dags test` failed (exit code {code}); see {logs / 'dags-test.log'}"
                ) from None
            raise
    print_summary(outcome, workdir, generated, args.parts)
    if code != 0 or outcome.state != "success":
        print(f"\nThe DAG run failed (exit code {code}); see {logs / 'dags-test.log'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
