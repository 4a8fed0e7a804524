"""Scenario ``sync_diff``: the sync's diff against DuckDB computing both anti-joins of the same inputs.

Inputs (``syncdiff.ensure_inputs``): a snapshot of n triples and a desired state with 1% churn (n / 100
triples gone, n / 100 new), both as CSV files in shuffled order; the snapshot also in the sync's
snapshot format, written beforehand. Each side runs in a fresh process (``python -m
benchmarks.syncdiff``), DuckDB first, then ours, ``repeats`` times; the fastest run of each side
counts (the machine is shared: the slower runs measure the neighbours). Targets: our wall time <= 3x
DuckDB's, our peak RSS <= 1 GiB; and both sides must find exactly the generated creates and removals.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from benchmarks.harness import REPO_ROOT, CaseResult, Check

if TYPE_CHECKING:
    from benchmarks.scenarios import Context

RATIO_TARGET = 3.0
RSS_TARGET_MIB = 1024.0


def _child(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.syncdiff", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3_600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.syncdiff {args[0]} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def sync_diff(ctx: Context) -> list[CaseResult]:
    """Wall time and peak RSS of ``diff()`` (snapshot read and desired spool included) vs DuckDB."""
    triples, repeats = ctx.sizes.sync_diff_triples, ctx.sizes.sync_diff_repeats
    work = ctx.runner.work / "sync_diff"
    ctx.runner.say(f"sync_diff: preparing {triples:,} + {triples:,} triples (reused when present)")
    prepared = _child(
        ["prepare", "--triples", str(triples), "--data-dir", str(ctx.data_dir), "--work", str(work)]
    )
    runs: dict[str, list[dict[str, Any]]] = {"duckdb": [], "ours": []}
    load_start = os.getloadavg()[0]
    for attempt in range(repeats):
        for side, snapshot in (("duckdb", prepared["snapshot_csv"]), ("ours", prepared["snapshot_file"])):
            folder = work / f"{side}-{attempt}"
            ctx.runner.say(f"sync_diff: {side}, run {attempt + 1} of {repeats}")
            desired = prepared["desired_csv"]
            runs[side].append(
                _child([side, "--desired", desired, "--snapshot", snapshot, "--work", str(folder)])
            )
            shutil.rmtree(folder, ignore_errors=True)
    best = {side: min(results, key=lambda r: r["wall_s"]) for side, results in runs.items()}
    ours, duck = best["ours"], best["duckdb"]
    ratio = ours["wall_s"] / duck["wall_s"]
    our_rss_mib = max(r["vm_hwm_kb"] for r in runs["ours"]) / 1024
    churn = prepared["churn"]
    expected = {"creates": churn, "removals": churn, "unchanged": triples - churn}
    wrong = sum(1 for r in runs["ours"] + runs["duckdb"] for k, v in expected.items() if r[k] != v)
    figures: dict[str, Any] = {
        "triples_each": triples,
        "churn_each_way": churn,
        "ours_wall_s": round(ours["wall_s"], 2),
        "duckdb_wall_s": round(duck["wall_s"], 2),
        "ratio_ours_over_duckdb": round(ratio, 2),
        "ours_read_snapshot_s": round(ours["read_snapshot_s"], 2),
        "ours_spool_desired_s": round(ours["spool_desired_s"], 2),
        "ours_diff_s": round(ours["diff_s"], 2),
        "ours_cpu_s": round(ours["cpu_s"], 2),
        "duckdb_cpu_s": round(duck["cpu_s"], 2),
        "ours_peak_rss_mib": round(our_rss_mib, 1),
        "duckdb_peak_rss_mib": round(max(r["vm_hwm_kb"] for r in runs["duckdb"]) / 1024, 1),
        "snapshot_bytes_per_triple": prepared["snapshot_write"]["bytes_per_triple"],
        "snapshot_write_s": prepared["snapshot_write"]["write_s"],
        "load_average_start": round(load_start, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    case = CaseResult(
        "diff-1pct-churn", {"triples": triples, "churn": churn, "repeats": repeats}, figures, runs
    )
    case.checks = [
        Check("sync_diff", case.name, "wall time, ours / DuckDB", round(ratio, 2), "<=", RATIO_TARGET, "x"),
        Check("sync_diff", case.name, "our peak RSS", round(our_rss_mib, 1), "<=", RSS_TARGET_MIB, " MiB"),
        Check("sync_diff", case.name, "counts that differ from the generated churn", wrong, "<=", 0),
    ]
    return [case]
