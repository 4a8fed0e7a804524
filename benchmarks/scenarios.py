"""The scenarios of the performance issue (and the sync's diff, and issue 13's ``key_resolution``
in its own module), each a function from sizes to checked results.

Each scenario starts its own stand-in process(es) with the limits it is about, runs the clients in
their own processes (``harness.Runner``) and turns raw figures into checks against the targets.
How each ceiling is derived is written next to the code that computes it and in the README.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.data import ensure_csv
from benchmarks.harness import BATCH_SIZE, CaseResult, Check, Runner, created_between, standin_config
from benchmarks.key_resolution import key_resolution
from benchmarks.shared_hosts import shared_hosts
from benchmarks.standin import StandInProcess
from benchmarks.syncdiff_scenario import sync_diff

#: HubSpot's rolling window.
WINDOW_S = 10.0
#: Object types per process in the shared-limit scenario, with HubSpot's unlabeled built-in type id, so
#: that the stand-in's counters can tell the four processes apart while they share one app's limit.
SHARED_ROUTES = (
    ("contacts", "companies", 279),
    ("companies", "contacts", 280),
    ("deals", "contacts", 3),
    ("contacts", "deals", 4),
)


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs: ``FULL`` for the issue's figures, ``QUICK`` for a CI smoke run."""

    rate_pairs: int
    rate_cases: tuple[tuple[int, float], ...]  # (R per 10 s, mean latency ms)
    rate_baseline_batches: int | None  # None: the whole input
    latency_pairs: int
    latency_baseline_batches: int
    shared_pairs_each: int
    cost_pairs: int
    cost_baseline_pairs: int
    memory_pairs: tuple[int, ...]
    jitter_ms: float = 50.0
    #: Triples of each input of the sync diff (desired and snapshot; 1% churn between them).
    sync_diff_triples: int = 10_000_000
    sync_diff_repeats: int = 2
    #: ``key_resolution``: pairs by email -> external_id, distinct contacts and companies among
    #: them, and the distinct keys of its memory run.
    key_pairs: int = 1_000_000
    key_contacts: int = 100_000
    key_companies: int = 10_000
    key_memory_keys: int = 1_000_000


FULL = Sizes(
    rate_pairs=60_000,
    rate_cases=((100, 150.0), (100, 400.0), (190, 150.0), (190, 400.0)),
    rate_baseline_batches=None,
    latency_pairs=200_000,
    latency_baseline_batches=300,
    shared_pairs_each=15_000,
    cost_pairs=1_000_000,
    cost_baseline_pairs=1_000_000,  # the same input: about 2 minutes of hubspot-api-client
    memory_pairs=(100_000, 1_000_000, 5_000_000),
)
#: Quick sizes still cross a window boundary where a limit applies (a single window would say nothing
#: about pacing), and the memory runs reuse the cost run, to stay well under two minutes.
QUICK = Sizes(
    rate_pairs=11_000,
    rate_cases=((100, 150.0),),
    rate_baseline_batches=20,
    latency_pairs=20_000,
    latency_baseline_batches=20,
    shared_pairs_each=3_000,
    cost_pairs=30_000,
    cost_baseline_pairs=5_000,
    memory_pairs=(5_000, 30_000),
    sync_diff_triples=200_000,
    sync_diff_repeats=1,
    key_pairs=20_000,
    key_contacts=2_000,
    key_companies=500,
    key_memory_keys=20_000,
)


@dataclass
class Context:
    """What every scenario needs: where to write, where the data lives, how big to run."""

    runner: Runner
    data_dir: Path
    sizes: Sizes
    #: Operator runs already done in this invocation, by (stand-in config, file): the memory scenario
    #: reuses the cost scenario's million-pair run instead of repeating it.
    operator_runs: dict[tuple[str, str], dict[str, Any]]

    def csv(self, pairs: int) -> Path:
        """The CSV of ``pairs`` pairs, generated on first use."""
        return ensure_csv(self.data_dir, pairs)

    def standin(self, config: dict[str, Any], name: str) -> StandInProcess:
        """A stand-in process for one case."""
        return StandInProcess(config, self.runner.work, name)


def _throughput(result: dict[str, Any]) -> float:
    return result["created"] / result["wall_s"] if result["wall_s"] > 0 else 0.0


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    """A client's result for ``results.json``: samples thinned so the file stays readable."""
    copy = dict(result)
    samples = copy.get("samples") or []
    if len(samples) > 400:
        step = math.ceil(len(samples) / 400)
        copy["samples"] = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    return copy


def _429_pct(result: dict[str, Any]) -> float:
    server = result["server"]
    return 100.0 * server["rate_limited"] / server["requests"] if server["requests"] else 0.0


# -- 1. rate-limited ----------------------------------------------------------------------------------
def rate_limited(ctx: Context) -> list[CaseResult]:
    """The operator against HubSpot's rolling window, next to sequential baselines on the same input.

    Least possible wall time under a rolling window of R requests per 10 s for N requests: R go at
    once, the next R as soon as the first leave the window, ...; the last starts after
    (ceil(N / R) - 1) windows and ends one latency later. Throughput ceiling: R x B pairs per 10 s.
    The baselines never reach R (a sequential loop sends about 1000 / L requests per second, below
    R / 10 for every case here), so they run once per latency profile, under the first case's R,
    and their figures are compared with every case of that latency.
    """
    sizes = ctx.sizes
    path = ctx.csv(sizes.rate_pairs)
    batches = math.ceil(sizes.rate_pairs / BATCH_SIZE)
    baselines: dict[float, dict[str, dict[str, Any]]] = {}
    cases = []
    for rate, latency in sizes.rate_cases:
        name = f"R{rate}-L{int(latency)}"
        ctx.runner.say(f"rate_limited {name}: {sizes.rate_pairs:,} pairs ({batches} batches)")
        config = standin_config(rate_limit=rate, latency_ms=latency, jitter_ms=sizes.jitter_ms)
        with ctx.standin(config, f"rate-{name}") as standin:
            operator = ctx.runner.run("operator", standin, path, name)
            if latency not in baselines:
                extra = {"max_batches": sizes.rate_baseline_batches}
                baselines[latency] = {
                    kind: ctx.runner.run(kind, standin, path, f"{name}-baseline", **extra)
                    for kind in ("requests", "hubspot")
                }
        # N: every request HubSpot admitted during the operator's run: its batches, and the one read
        # of the association types it makes before the first write (and any retried request).
        admitted = operator["server"]["requests"] - operator["server"]["rate_limited"]
        bound = (math.ceil(admitted / rate) - 1) * WINDOW_S + latency / 1000.0
        batches_bound = (math.ceil(batches / rate) - 1) * WINDOW_S + latency / 1000.0
        ceiling = rate * BATCH_SIZE / WINDOW_S
        throughput = _throughput(operator)
        figures: dict[str, Any] = {
            "requests_batches": batches,
            "requests_admitted": admitted,
            "wall_s": round(operator["wall_s"], 3),
            "least_wall_s": round(bound, 3),
            "wall_vs_least_pct": round(100 * operator["wall_s"] / bound, 2),
            # For reference: the least time for the batches alone, as if the type check were free.
            "least_wall_batches_only_s": round(batches_bound, 3),
            "wall_vs_least_batches_only_pct": round(100 * operator["wall_s"] / batches_bound, 2),
            "throughput_pairs_s": round(throughput, 1),
            "ceiling_pairs_s": ceiling,
            "throughput_pct_of_ceiling": round(100 * throughput / ceiling, 2),
            "requests_sent_server": operator["server"]["requests"],
            "responses_429": operator["server"]["rate_limited"],
            "pct_429": round(_429_pct(operator), 3),
            "client_cpu_s": round(operator["cpu_s"], 3),
            "standin_cpu_utilisation": operator["server"]["cpu_utilisation"],
            "created": operator["created"],
        }
        for kind, base in baselines[latency].items():
            base_throughput = _throughput(base)
            figures[f"{kind}_loop_throughput_pairs_s"] = round(base_throughput, 1)
            figures[f"{kind}_loop_pairs"] = base["pairs"]
            figures[f"{kind}_loop_429s"] = base["throttled"]
            figures[f"speedup_vs_{kind}_loop"] = (
                round(throughput / base_throughput, 2) if base_throughput else None
            )
            # Wall-time ratio on the whole input: the baseline's time per pair scaled to the input.
            base_wall_full = base["wall_s"] * sizes.rate_pairs / max(base["pairs"], 1)
            figures[f"{kind}_loop_wall_s_for_input"] = round(base_wall_full, 1)
            figures[f"wall_ratio_{kind}_loop_over_operator"] = round(base_wall_full / operator["wall_s"], 2)
        case = CaseResult(
            name,
            {
                "R": rate,
                "interval_s": WINDOW_S,
                "latency_ms": latency,
                "jitter_ms": sizes.jitter_ms,
                "B": BATCH_SIZE,
                "pairs": sizes.rate_pairs,
                "N": batches,
                "baseline_batches": sizes.rate_baseline_batches or batches,
            },
            figures,
            {"operator": _strip(operator), **{k: _strip(v) for k, v in baselines[latency].items()}},
        )
        case.checks = [
            Check(
                "rate_limited",
                name,
                "wall time vs least a rolling window allows",
                figures["wall_vs_least_pct"],
                "<=",
                105.0,
                "%",
            ),
            Check(
                "rate_limited",
                name,
                "throughput vs R x B / 10 s",
                figures["throughput_pct_of_ceiling"],
                ">=",
                90.0,
                "%",
            ),
            Check("rate_limited", name, "429s as share of requests", figures["pct_429"], "<=", 1.0, "%"),
        ]
        cases.append(case)
    return cases


# -- 2. latency-bound ---------------------------------------------------------------------------------
def latency_bound(ctx: Context) -> list[CaseResult]:
    """No 10-second limit: throughput is bounded by requests in flight, C x B / L.

    With C requests in flight, each taking L on average, at most C / L requests finish per second,
    i.e. C x B / L pairs per second. C is the operator's default ``max_concurrency`` (read from the
    operator it ran, not assumed). The baseline is one request in flight: about B / L.
    """
    sizes = ctx.sizes
    latency = 150.0
    path = ctx.csv(sizes.latency_pairs)
    ctx.runner.say(f"latency_bound: {sizes.latency_pairs:,} pairs, L={latency:.0f} ms, no rate limit")
    config = standin_config(rate_limit=None, latency_ms=latency, jitter_ms=sizes.jitter_ms)
    with ctx.standin(config, "latency") as standin:
        operator = ctx.runner.run("operator", standin, path, "latency")
        baseline = ctx.runner.run(
            "requests", standin, path, "latency-baseline", max_batches=sizes.latency_baseline_batches
        )
    concurrency = int(operator["max_concurrency"])
    ceiling = concurrency * BATCH_SIZE / (latency / 1000.0)
    throughput = _throughput(operator)
    base_throughput = _throughput(baseline)
    figures = {
        "default_concurrency": concurrency,
        "ceiling_pairs_s": round(ceiling, 1),
        "throughput_pairs_s": round(throughput, 1),
        "throughput_pct_of_ceiling": round(100 * throughput / ceiling, 2),
        "requests_loop_throughput_pairs_s": round(base_throughput, 1),
        "requests_loop_pairs": baseline["pairs"],
        "speedup_vs_requests_loop": round(throughput / base_throughput, 2) if base_throughput else None,
        "wall_s": round(operator["wall_s"], 3),
        "client_cpu_s": round(operator["cpu_s"], 3),
        "client_cpu_utilisation": round(operator["cpu_s"] / operator["wall_s"], 3),
        "standin_cpu_utilisation": operator["server"]["cpu_utilisation"],
        "standin_peak_concurrency": operator["server"]["peak_concurrency"],
        "pct_429": round(_429_pct(operator), 3),
    }
    case = CaseResult(
        f"C{concurrency}-L{int(latency)}",
        {
            "latency_ms": latency,
            "jitter_ms": sizes.jitter_ms,
            "B": BATCH_SIZE,
            "pairs": sizes.latency_pairs,
            "baseline_batches": sizes.latency_baseline_batches,
            "rate_limit": None,
        },
        figures,
        {"operator": _strip(operator), "requests": _strip(baseline)},
    )
    case.checks = [
        Check(
            "latency_bound",
            case.name,
            "throughput vs C x B / L",
            figures["throughput_pct_of_ceiling"],
            ">=",
            90.0,
            "%",
        ),
        Check(
            "latency_bound",
            case.name,
            "throughput vs sequential requests loop",
            figures["speedup_vs_requests_loop"] or 0.0,
            ">=",
            6.0,
            "x",
        ),
    ]
    return [case]


# -- 3. shared limit ----------------------------------------------------------------------------------
def shared_limit(ctx: Context) -> list[CaseResult]:
    """Four operator processes, one app (one token), R = 100: share the window without storming it.

    Ceiling: the app's R x B / 10 s, whatever the number of processes. Each process writes a different
    pair of object types (same app, same limit) only so that the stand-in's per-endpoint counters and
    the processes' own progress can be told apart. Fair shares are measured while all four were
    running (from the latest start to the earliest finish), from each process's progress samples.
    """
    sizes = ctx.sizes
    rate, latency = 100, 150.0
    path = ctx.csv(sizes.shared_pairs_each)
    processes = len(SHARED_ROUTES)
    ctx.runner.say(f"shared_limit: {processes} processes x {sizes.shared_pairs_each:,} pairs, R={rate}")
    config = standin_config(rate_limit=rate, latency_ms=latency, jitter_ms=sizes.jitter_ms)
    clients = [
        ("operator", path, {"from_type": f, "to_type": t, "type_id": type_id})
        for f, t, type_id in SHARED_ROUTES
    ]
    with ctx.standin(config, "shared") as standin:
        results = ctx.runner.run_together(clients, standin, "shared")
    first_start = min(r["started"] for r in results)
    last_finish = max(r["finished"] for r in results)
    overlap_start = max(r["started"] for r in results)
    overlap_end = min(r["finished"] for r in results)
    created = sum(r["created"] for r in results)
    span = last_finish - first_start
    ceiling = rate * BATCH_SIZE / WINDOW_S
    aggregate = created / span if span > 0 else 0.0
    in_overlap = [created_between(r["samples"], r["started"], overlap_start, overlap_end) for r in results]
    shares = [100 * c / sum(in_overlap) if sum(in_overlap) else 0.0 for c in in_overlap]
    server = results[0]["server"]
    pct_429 = 100.0 * server["rate_limited"] / server["requests"] if server["requests"] else 0.0
    figures = {
        "processes": processes,
        "pairs_total": created,
        "span_s": round(span, 3),
        "aggregate_pairs_s": round(aggregate, 1),
        "ceiling_pairs_s": ceiling,
        "aggregate_pct_of_ceiling": round(100 * aggregate / ceiling, 2),
        "requests_server": server["requests"],
        "responses_429": server["rate_limited"],
        "pct_429": round(pct_429, 3),
        "overlap_s": round(overlap_end - overlap_start, 3),
        "shares_in_overlap_pct": [round(s, 2) for s in shares],
        "min_share_pct": round(min(shares), 2),
        "per_process_wall_s": [round(r["wall_s"], 2) for r in results],
        "per_process_429s_seen": [r["throttled"] for r in results],
    }
    case = CaseResult(
        f"{processes}x-R{rate}",
        {
            "R": rate,
            "latency_ms": latency,
            "jitter_ms": sizes.jitter_ms,
            "B": BATCH_SIZE,
            "pairs_each": sizes.shared_pairs_each,
            "routes": [list(r) for r in SHARED_ROUTES],
        },
        figures,
        {f"process{i + 1}": _strip(r) for i, r in enumerate(results)},
    )
    case.checks = [
        Check(
            "shared_limit",
            case.name,
            "aggregate throughput vs R x B / 10 s",
            figures["aggregate_pct_of_ceiling"],
            ">=",
            90.0,
            "%",
        ),
        Check("shared_limit", case.name, "429s as share of requests", figures["pct_429"], "<=", 2.0, "%"),
        Check(
            "shared_limit",
            case.name,
            "smallest process share while all ran",
            figures["min_share_pct"],
            ">=",
            18.0,
            "%",
        ),
    ]
    return [case]


# -- 4. cost per pair ---------------------------------------------------------------------------------
def _unlimited_operator(ctx: Context, pairs: int, label: str) -> dict[str, Any]:
    """An operator run with no limit and no latency (shared by the cost and memory scenarios)."""
    config = standin_config(rate_limit=None, latency_ms=0.0, jitter_ms=0.0)
    key = (repr(sorted(config.items())), str(ctx.csv(pairs)))
    if key not in ctx.operator_runs:
        ctx.runner.say(f"{label}: operator over {pairs:,} pairs, no limit, no latency")
        with ctx.standin(config, f"unlimited-{pairs}") as standin:
            ctx.operator_runs[key] = ctx.runner.run("operator", standin, ctx.csv(pairs), f"unlimited-{pairs}")
    return ctx.operator_runs[key]


def cost_per_pair(ctx: Context) -> list[CaseResult]:
    """Client CPU per pair through the whole path, against ``hubspot-api-client`` on the same input.

    CPU is the client process's own (``time.process_time`` around the work: every thread, user +
    system), so the stand-in's work is not in it. The baselines run on the first
    ``cost_baseline_pairs`` rows of the input (all of it in the full run; fewer in the quick run) and
    are compared per pair (a loop holds one batch at a time, so its cost per pair does not depend on
    the input's length).
    """
    sizes = ctx.sizes
    operator = _unlimited_operator(ctx, sizes.cost_pairs, "cost_per_pair")
    config = standin_config(rate_limit=None, latency_ms=0.0, jitter_ms=0.0)
    baseline_path = ctx.csv(sizes.cost_baseline_pairs)
    ctx.runner.say(f"cost_per_pair: baselines over {sizes.cost_baseline_pairs:,} pairs")
    with ctx.standin(config, "cost-baselines") as standin:
        baselines = {
            kind: ctx.runner.run(kind, standin, baseline_path, "cost") for kind in ("hubspot", "requests")
        }
    op_us = 1e6 * operator["cpu_s"] / max(operator["pairs"], 1)
    figures: dict[str, Any] = {
        "operator_pairs": operator["pairs"],
        "operator_created": operator["created"],
        "operator_cpu_s": round(operator["cpu_s"], 3),
        "operator_cpu_us_per_pair": round(op_us, 3),
        "operator_setup_cpu_s": round(operator["setup_cpu_s"], 3),
        "operator_wall_s": round(operator["wall_s"], 3),
        "standin_cpu_utilisation": operator["server"]["cpu_utilisation"],
    }
    for kind, base in baselines.items():
        us = 1e6 * base["cpu_s"] / max(base["pairs"], 1)
        figures[f"{kind}_pairs"] = base["pairs"]
        figures[f"{kind}_cpu_us_per_pair"] = round(us, 3)
        figures[f"{kind}_over_operator"] = round(us / op_us, 2) if op_us else None
    case = CaseResult(
        "csv-no-limit",
        {
            "pairs": sizes.cost_pairs,
            "baseline_pairs": sizes.cost_baseline_pairs,
            "latency_ms": 0,
            "rate_limit": None,
            "B": BATCH_SIZE,
        },
        figures,
        {"operator": _strip(operator), **{k: _strip(v) for k, v in baselines.items()}},
    )
    case.checks = [
        Check(
            "cost_per_pair",
            case.name,
            "hubspot-api-client CPU per pair / operator's",
            figures["hubspot_over_operator"] or 0.0,
            ">=",
            10.0,
            "x",
            note=f"hubspot-api-client measured on {sizes.cost_baseline_pairs:,} pairs, compared per pair",
        ),
    ]
    return [case]


# -- 5. memory ----------------------------------------------------------------------------------------
def memory(ctx: Context) -> list[CaseResult]:
    """Peak RSS of operator runs over growing inputs: a streaming load should not grow with the input.

    ``ru_maxrss`` of the client process covers its whole life: Python, Airflow, the package and the
    load. The target is on growth from the smallest to the largest input.
    """
    sizes = ctx.sizes
    runs = {pairs: _unlimited_operator(ctx, pairs, "memory") for pairs in sizes.memory_pairs}
    smallest, largest = runs[min(runs)], runs[max(runs)]
    growth = 100.0 * (largest["maxrss_kb"] - smallest["maxrss_kb"]) / smallest["maxrss_kb"]
    figures = {
        "peak_rss_mib": {str(p): round(r["maxrss_kb"] / 1024, 1) for p, r in runs.items()},
        "vm_hwm_mib": {str(p): round(r.get("vm_hwm_kb", 0) / 1024, 1) for p, r in runs.items()},
        "growth_pct_smallest_to_largest": round(growth, 2),
        "cpu_us_per_pair": {str(p): round(1e6 * r["cpu_s"] / max(r["pairs"], 1), 3) for p, r in runs.items()},
        "wall_s": {str(p): round(r["wall_s"], 2) for p, r in runs.items()},
        "created": {str(p): r["created"] for p, r in runs.items()},
    }
    case = CaseResult(
        "csv-growth",
        {"pairs": list(sizes.memory_pairs), "latency_ms": 0, "rate_limit": None, "B": BATCH_SIZE},
        figures,
        {str(p): _strip(r) for p, r in runs.items()},
    )
    case.checks = [
        Check(
            "memory",
            case.name,
            "peak RSS growth, smallest to largest input",
            round(growth, 2),
            "<=",
            10.0,
            "%",
        ),
    ]
    return [case]


SCENARIOS: dict[str, Callable[[Context], list[CaseResult]]] = {
    "rate_limited": rate_limited,
    "latency_bound": latency_bound,
    "shared_limit": shared_limit,
    "shared_hosts": shared_hosts,
    "cost_per_pair": cost_per_pair,
    "memory": memory,
    "sync_diff": sync_diff,
    "key_resolution": key_resolution,
}
