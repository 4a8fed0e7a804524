"""The sync diff benchmark's plumbing at small size: inputs with the stated churn, and both measured
sides (each in its own process, as ``make bench`` runs them) finding exactly the same changes.
Timings are never asserted: the benchmark's table is where the targets are judged."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.syncdiff import ensure_inputs
from tests.benchmark_runs import run_quick

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_inputs_have_one_percent_churn_each_way_and_are_reused(tmp_path):
    snapshot, desired, churn = ensure_inputs(tmp_path, 3000)
    assert churn == 30

    def rows(path: Path) -> set[tuple[int, ...]]:
        with path.open() as handle:
            reader = csv.reader(handle)
            assert next(reader) == ["from_id", "to_id", "type_code"]
            return {tuple(int(v) for v in row) for row in reader}

    old, new = rows(snapshot), rows(desired)
    assert (len(old), len(new), len(new - old), len(old - new)) == (3000, 3000, 30, 30)
    assert all(len(str(t[0])) == 11 and 11 <= len(str(t[1])) <= 12 for t in old)
    stamp = snapshot.stat().st_mtime_ns
    assert ensure_inputs(tmp_path, 3000)[0].stat().st_mtime_ns == stamp


def _step(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.syncdiff", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_both_sides_find_the_same_changes(tmp_path):
    work = str(tmp_path / "work")
    prepared = _step("prepare", "--triples", "20000", "--data-dir", str(tmp_path / "data"), "--work", work)
    assert prepared["snapshot_write"]["bytes_per_triple"] < 24
    desired = prepared["desired_csv"]
    ours = _step("ours", "--desired", desired, "--snapshot", prepared["snapshot_file"], "--work", work)
    duck = _step("duckdb", "--desired", desired, "--snapshot", prepared["snapshot_csv"], "--work", work)
    for side in (ours, duck):
        assert (side["creates"], side["removals"], side["unchanged"]) == (200, 200, 19_800)
        assert side["wall_s"] > 0 and side["cpu_s"] > 0 and side["vm_hwm_kb"] > 0
    with (tmp_path / "work" / "duckdb-creates.csv").open() as handle:
        assert sum(1 for _ in handle) == 201


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_quick_scenario_writes_its_checks(tmp_path):
    out = tmp_path / "results"
    document, _ = run_quick(out, "sync_diff")
    (case,) = document["scenarios"]["sync_diff"]
    metrics = {check["metric"]: check for check in case["checks"]}
    assert set(metrics) == {
        "wall time, ours / DuckDB",
        "our peak RSS",
        "counts that differ from the generated churn",
    }
    assert metrics["counts that differ from the generated churn"]["passed"]
    figures = case["figures"]
    assert (figures["triples_each"], figures["churn_each_way"]) == (200_000, 2_000)
    assert figures["ratio_ours_over_duckdb"] == pytest.approx(
        figures["ours_wall_s"] / figures["duckdb_wall_s"], rel=0.05
    )
    assert not list((out / "work" / "sync_diff").glob("ours-*")), "each run's sets are removed"
