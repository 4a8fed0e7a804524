"""``python -m benchmarks.profile``: where the operator's client CPU goes, in microseconds per pair.

Why this exists: the cost-per-pair target compares the operator's whole path with
``hubspot-api-client``; when it is missed, the next question is which function to make cheaper.
This runs one operator client over a CSV against an unlimited, zero-latency stand-in twice: once
plain, to measure CPU per pair, and once under a profiler, to split that CPU among functions. The
profiled shares are scaled to the plain run's CPU, since every profiler inflates what it watches.

Two profilers: ``cProfile`` in every thread (stdlib, deterministic, inflates call-heavy code), or
py-spy (``--py-spy PATH``, sampling, ``--gil``: only the thread holding the GIL, i.e. Python work).
py-spy is not a project dependency; point ``--py-spy`` at any installed binary.
"""

from __future__ import annotations

import argparse
import collections
import json
import pstats
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.data import ensure_csv
from benchmarks.harness import REPO_ROOT, Runner, standin_config
from benchmarks.standin import StandInProcess

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "profile"
#: Frames of the work itself: samples outside them are imports and set-up.
_WORK_FRAMES = ("execute (airflow_hubspot_assoc/operators", "_send (airflow_hubspot_assoc/load.py")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000, help="pairs in the CSV (default %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where files go (default %(default)s)")
    parser.add_argument("--data-dir", type=Path, help="where the CSV goes (default: benchmarks/results/data)")
    parser.add_argument("--py-spy", type=Path, help="sample with this py-spy binary instead of cProfile")
    parser.add_argument("--top", type=int, default=30, help="functions to list (default %(default)s)")
    return parser.parse_args(argv)


def _client(
    runner: Runner, standin: StandInProcess, spec: dict[str, Any], name: str, wrap: list[str]
) -> dict:
    spec_path = runner.work / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    with (runner.work / f"{name}.log").open("w", encoding="utf-8") as log:
        subprocess.run(
            [*wrap, sys.executable, "-m", "benchmarks.client", str(spec_path)],
            cwd=REPO_ROOT,
            env=runner.env(standin),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    return dict(json.loads(Path(spec["result_path"]).read_text(encoding="utf-8")))


def cprofile_table(path: Path, pairs: int, scale: float, top: int) -> list[tuple[float, float, str]]:
    """(self us/pair, cumulative us/pair, function) for the top functions by self time, scaled."""
    stats = pstats.Stats(str(path))
    rows = []
    for (filename, line, name), (_, _, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = _short(filename)
        rows.append((1e6 * tottime * scale / pairs, 1e6 * cumtime * scale / pairs, f"{where}:{line}:{name}"))
    rows.sort(reverse=True)
    shown = rows[:top]
    # The package's own functions by cumulative time: which of its steps the self times add up to.
    package = sorted(
        (r for r in rows[top:] if r[2].startswith("airflow_hubspot_assoc/")), key=lambda r: -r[1]
    )
    return shown + package[:top]


def pyspy_table(
    path: Path, pairs: int, cpu_us: float, top: int
) -> tuple[list[tuple[float, float, str]], int]:
    """(self us/pair, inclusive us/pair, function) from py-spy's collapsed stacks, scaled to ``cpu_us``."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        stack, count_text = raw.rsplit(" ", 1)
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        if not any(marker in frame for frame in frames for marker in _WORK_FRAMES):
            continue
        total += count
        own[_short(frames[-1])] += count
        for frame in set(frames):
            inclusive[_short(frame)] += count
    scale = cpu_us / total if total else 0.0
    rows = [(n * scale, inclusive[name] * scale, name) for name, n in own.most_common(top)]
    # The package's own functions by inclusive time: which of its steps the self times add up to.
    shown = {name for _, _, name in rows}
    rows += [
        (own[name] * scale, n * scale, name)
        for name, n in inclusive.most_common()
        if "airflow_hubspot_assoc/" in name and name not in shown
    ][:top]
    return rows, total


def _short(filename: str) -> str:
    """A path from the package or library root, so lines stay readable."""
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main(argv: list[str] | None = None) -> int:
    """Measure plainly, then under the profiler; print the functions by self time per pair."""
    args = parse_args(argv)
    runner = Runner(args.out)
    data_dir = args.data_dir or DEFAULT_OUT.parent / "data"
    path = ensure_csv(data_dir, args.pairs)
    config = standin_config(rate_limit=None, latency_ms=0.0, jitter_ms=0.0)
    with StandInProcess(config, runner.work, "profile") as standin:
        base = {"kind": "operator", "pairs_path": str(path), "url": standin.url, "token": standin.token}
        runner.say(f"plain run over {args.pairs:,} pairs")
        plain = _client(
            runner, standin, {**base, "result_path": str(runner.work / "plain.json")}, "plain", []
        )
        cpu_us = 1e6 * plain["cpu_s"] / plain["pairs"]
        runner.say(f"plain: {cpu_us:.2f} us/pair CPU; now profiled")
        spec = {**base, "result_path": str(runner.work / "profiled.json")}
        if args.py_spy:
            raw = args.out / "py-spy.txt"
            wrap = [str(args.py_spy), "record", "--gil", "-r", "250", "-f", "raw", "-o", str(raw), "--"]
            _client(runner, standin, spec, "profiled", wrap)
            rows, samples = pyspy_table(raw, plain["pairs"], cpu_us, args.top)
            header = f"py-spy --gil, {samples} samples in the work, scaled to {cpu_us:.2f} us/pair"
        else:
            spec["cprofile_path"] = str(args.out / "cprofile.pstats")
            profiled = _client(runner, standin, spec, "profiled", [])
            scale = plain["cpu_s"] / profiled["cpu_s"]
            rows = cprofile_table(Path(spec["cprofile_path"]), plain["pairs"], scale, args.top)
            header = (
                f"cProfile, every thread; profiled CPU {profiled['cpu_s']:.2f} s scaled to the plain "
                f"run's {plain['cpu_s']:.2f} s"
            )
    print(f"\n{header}\n{'self us/pair':>12}  {'incl us/pair':>12}  function")
    for own, inclusive, name in rows:
        print(f"{own:12.2f}  {inclusive:12.2f}  {name}")
    print(
        f"\nplain run: {cpu_us:.2f} us/pair CPU over {plain['pairs']:,} pairs, wall {plain['wall_s']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
