"""``python -m benchmarks.run``: the performance benchmarks (``make bench``).

Runs the five scenarios of the performance issue against the HubSpot stand-in, and the sync's diff
against DuckDB (``sync_diff``), each client in a process of its own, and writes ``results.json``
(every figure, target, pass/fail and the machine), ``throughput.png`` (throughput over time against
each ceiling) and a table on stdout.

``--quick`` shrinks every input for a CI smoke run; ``--only NAME`` (repeatable) picks scenarios.
The exit status is 0 when the runs completed, whether or not every target was met: a missed target
is a finding to read in the table, not a crash (``--strict`` makes it exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import CaseResult, Runner, machine_info, trailing_rate, write_json
from benchmarks.plot import Panel, Series, render
from benchmarks.scenarios import FULL, QUICK, SCENARIOS, WINDOW_S, Context

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
PLOT_TITLE = "Throughput against the ceiling"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, for a CI smoke run (< 2 min)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where results go (default: %(default)s)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the generated CSV files go (default: OUT/data, reused between runs)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    parser.add_argument("--replot", action="store_true", help="redraw OUT/throughput.png from results.json")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the table")
    return parser.parse_args(argv)


def throughput_panels(scenarios: dict[str, list[dict[str, Any]]]) -> list[Panel]:
    """One panel per case whose throughput over time says something: the limited and latency-bound ones.

    Works from ``results.json``'s ``scenarios`` (not live objects), so that ``--replot`` can redraw
    an earlier run's figures without running anything.
    """
    panels = []
    labels = {"operator": "operator", "requests": "requests loop", "hubspot": "hubspot-api-client loop"}

    def client_series(runs: dict[str, Any], window: float) -> list[Series]:
        return [
            Series(labels[kind], trailing_rate(run.get("samples") or [], window), dashed=kind != "operator")
            for kind, run in runs.items()
        ]

    for case in scenarios.get("rate_limited", []):
        params, ceiling = case["params"], case["figures"]["ceiling_pairs_s"]
        panels.append(
            Panel(
                f"R={params['R']}/10 s, latency {params['latency_ms']:.0f}+/-{params['jitter_ms']:.0f} ms",
                client_series(case["runs"], WINDOW_S),
                [(f"ceiling R x B / 10 s = {ceiling:,.0f}", ceiling)],
                y_label="pairs/s, trailing 10 s",
            )
        )
    for case in scenarios.get("latency_bound", []):
        params, ceiling = case["params"], case["figures"]["ceiling_pairs_s"]
        panels.append(
            Panel(
                f"no rate limit, latency {params['latency_ms']:.0f}+/-{params['jitter_ms']:.0f} ms",
                client_series(case["runs"], 1.0),
                [(f"ceiling C x B / L = {ceiling:,.0f}", ceiling)],
                y_label="pairs/s, trailing 1 s",
            )
        )
    for case in scenarios.get("shared_limit", []):
        params, ceiling = case["params"], case["figures"]["ceiling_pairs_s"]
        runs = list(case["runs"].values())
        origin = min(run["started"] for run in runs)
        shifted = []
        for run in runs:
            offset = run["started"] - origin
            shifted.append([[s[0] + offset, *s[1:]] for s in run.get("samples") or []])
        # The aggregate is the sum of the processes' trailing rates on one time grid.
        end = max((samples[-1][0] for samples in shifted if samples), default=0.0)
        rates = [dict(trailing_rate(samples, WINDOW_S, end=end)) for samples in shifted]
        grid = sorted(set().union(*[r.keys() for r in rates])) if rates else []
        series = [
            Series(f"{len(runs)} processes together", [(t, sum(r.get(t, 0.0) for r in rates)) for t in grid])
        ]
        series += [
            Series(f"process {i + 1}", sorted(rate.items()), dashed=True) for i, rate in enumerate(rates)
        ]
        panels.append(
            Panel(
                f"{len(runs)} processes, one app, R={params['R']}/10 s",
                series,
                [(f"ceiling R x B / 10 s = {ceiling:,.0f}", ceiling)],
                y_label="pairs/s, trailing 10 s",
            )
        )
    return panels


def print_table(results: dict[str, list[CaseResult]]) -> None:
    """Every check, one line each, then the headline figures of each case."""
    rows = [("scenario", "case", "metric", "value", "target", "result")]
    for cases in results.values():
        for case in cases:
            for check in case.checks:
                rows.append(
                    (
                        check.scenario,
                        check.case,
                        check.metric,
                        f"{check.value:,.2f}{check.unit}",
                        f"{check.op} {check.target:,.4g}{check.unit}",
                        f"{'PASS' if check.passed else 'FAIL'} ({check.margin})",
                    )
                )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = "  ".join("-" * w for w in widths)
    print()
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if index == 0:
            print(line)
    print()
    for name, cases in results.items():
        for case in cases:
            shown = {k: v for k, v in case.figures.items() if not isinstance(v, dict | list)}
            text = ", ".join(f"{k}={v}" for k, v in shown.items())
            print(f"{name} {case.name}: {text}")
    print()


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios; write results.json and throughput.png; print the table."""
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        scenarios = json.loads((out / "results.json").read_text(encoding="utf-8"))["scenarios"]
        print(render(throughput_panels(scenarios), out / "throughput.png", title=PLOT_TITLE))
        return 0
    runner = Runner(out, verbose=not args.quiet)
    sizes = QUICK if args.quick else FULL
    ctx = Context(runner, args.data_dir or out / "data", sizes, {})
    chosen = [name for name in SCENARIOS if not args.only or name in args.only]
    started = time.time()
    machine = machine_info()
    results: dict[str, list[CaseResult]] = {}
    errors: dict[str, str] = {}
    for name in chosen:
        try:
            results[name] = SCENARIOS[name](ctx)
        except Exception as err:  # one broken scenario must not lose the others' figures
            errors[name] = f"{type(err).__name__}: {err}"
            runner.say(f"{name} FAILED to run: {errors[name]}")
    checks = [check for cases in results.values() for case in cases for check in case.checks]
    document: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.run", *(argv or sys.argv[1:])]),
        "quick": args.quick,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {**machine, "load_average_end": list(os.getloadavg())},
        "sizes": sizes.__dict__,
        "scenarios": {name: [case.as_dict() for case in cases] for name, cases in results.items()},
        "errors": errors,
        "checks": [check.as_dict() for check in checks],
        "passed": bool(checks) and not errors and all(check.passed for check in checks),
    }
    write_json(out / "results.json", document)
    panels = throughput_panels(document["scenarios"])
    if panels:
        render(panels, out / "throughput.png", title=PLOT_TITLE)
    print_table(results)
    for name, error in errors.items():
        print(f"{name}: did not run to the end: {error}")
    print(f"results: {out / 'results.json'}" + (f", plot: {out / 'throughput.png'}" if panels else ""))
    if errors:
        return 2
    return 1 if args.strict and not document["passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
