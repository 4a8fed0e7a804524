"""Scenario 6, ``key_resolution``: a load by business keys (issue 13) at scale, and what it costs.

Pairs keyed by contact email -> company ``external_id`` (a unique custom property) against a
stand-in seeded with those records, at R = 100 per 10 s:

* resolution requests: each distinct key once, 100 a batch read, so exactly
  ceil(contacts / 100) + ceil(companies / 100) reads (the property check of ``external_id`` apart);
* wall time against the least a rolling window allows for every admitted request (the reads, the
  property check, the association-type read and the batch creates): (ceil(N / R) - 1) x 10 s + L;
* a second run with the first run's ``key_cache_path``: no resolution request at all;
* peak RSS of a run with ``memory_keys`` distinct keys against the same pairs given as record ids,
  both without a limit: what the key map costs.

Apart from ``scenarios.py`` (which registers it) to keep that module to the five original cases.
"""

from __future__ import annotations

import math
import shutil
from typing import TYPE_CHECKING, Any

from benchmarks.data import COMPANY_FIRST_ID, EMAIL_TEMPLATE, EXTERNAL_ID_TEMPLATE, ensure_keys_csv
from benchmarks.harness import BATCH_SIZE, CaseResult, Check, standin_config

if TYPE_CHECKING:
    from benchmarks.scenarios import Context

WINDOW_S = 10.0
RATE = 100
LATENCY_MS = 150.0
#: Extra peak RSS allowed for the key map of the memory run's distinct keys.
MEMORY_BUDGET_MIB = 300.0
KEY_OPTIONS = {
    "from_id_property": "email",
    "to_id_property": "external_id",
    "max_failed_ratio": 0.0,
}


def _seeded(config: dict[str, Any], contacts: int, companies: int) -> dict[str, Any]:
    """The stand-in config with ``contacts`` contacts (emails) and ``companies`` companies (external ids)."""
    return {
        **config,
        "properties": [{"object_type": "companies", "name": "external_id", "has_unique_value": True}],
        "generated_records": [
            {"object_type": "contacts", "count": contacts, "properties": {"email": EMAIL_TEMPLATE}},
            {
                "object_type": "companies",
                "count": companies,
                "first_id": COMPANY_FIRST_ID,
                "properties": {"external_id": EXTERNAL_ID_TEMPLATE},
            },
        ],
    }


def _endpoint(result: dict[str, Any], name: str) -> int:
    """Requests the stand-in answered on one endpoint during the run (any status)."""
    counts = result["server"].get("by_endpoint_status") or {}
    return sum(n for key, n in counts.items() if key.rsplit(":", 1)[0] == name)


def key_resolution(ctx: Context) -> list[CaseResult]:
    """Resolution requests, wall time vs the window, a cached second run, and the key map's memory."""
    from benchmarks.scenarios import _strip  # registered there: imported when it runs

    sizes = ctx.sizes
    pairs, contacts, companies = sizes.key_pairs, sizes.key_contacts, sizes.key_companies
    path = ensure_keys_csv(ctx.data_dir, pairs, contacts, companies, from_keys=True, to_keys=True)
    cache = ctx.runner.work / "key-cache"
    shutil.rmtree(cache, ignore_errors=True)
    options = {"operator_kwargs": {**KEY_OPTIONS, "key_cache_path": str(cache)}}
    ctx.runner.say(
        f"key_resolution: {pairs:,} pairs by email -> external_id over {contacts:,} contacts and "
        f"{companies:,} companies, R={RATE}"
    )
    config = _seeded(
        standin_config(rate_limit=RATE, latency_ms=LATENCY_MS, jitter_ms=sizes.jitter_ms), contacts, companies
    )
    with ctx.standin(config, "keys-R100") as standin:
        first = ctx.runner.run("operator", standin, path, "keys-first", **options)
        second = ctx.runner.run("operator", standin, path, "keys-cached", **options)
    target_reads = math.ceil(contacts / 100) + math.ceil(companies / 100)
    figures: dict[str, Any] = {"target_resolution_reads": target_reads}
    for label, run in (("first", first), ("cached", second)):
        admitted = run["server"]["requests"] - run["server"]["rate_limited"]
        bound = (math.ceil(admitted / RATE) - 1) * WINDOW_S + LATENCY_MS / 1000.0
        run_figures = {
            "resolution_reads": _endpoint(run, "objects_batch_read"),
            "property_checks": _endpoint(run, "property"),
            "requests_admitted": admitted,
            "responses_429": run["server"]["rate_limited"],
            "wall_s": round(run["wall_s"], 3),
            "least_wall_s": round(bound, 3),
            "wall_vs_least_pct": round(100 * run["wall_s"] / bound, 2),
            "created": run["created"],
            "failed": run["record"].get("failed"),
            "client_cpu_s": round(run["cpu_s"], 3),
            "peak_rss_mib": round(run["maxrss_kb"] / 1024, 1),
        }
        # Flat, so that the run's closing table shows them all.
        figures.update({f"{label}_{key}": value for key, value in run_figures.items()})
    memory, memory_runs = _memory(ctx)
    figures.update(memory)
    runs = {"first": first, "cached": second, **memory_runs}
    case = CaseResult(
        f"email-extid-R{RATE}",
        {
            "R": RATE,
            "latency_ms": LATENCY_MS,
            "jitter_ms": sizes.jitter_ms,
            "B": BATCH_SIZE,
            "pairs": pairs,
            "contacts": contacts,
            "companies": companies,
            "memory_keys": sizes.key_memory_keys,
        },
        figures,
        {name: _strip(run) for name, run in runs.items()},
    )
    case.checks = [
        Check("key_resolution", case.name, "pairs created", figures["first_created"], ">=", pairs),
        Check(
            "key_resolution",
            case.name,
            "resolution reads vs ceil(contacts/100) + ceil(companies/100)",
            figures["first_resolution_reads"],
            "<=",
            target_reads,
        ),
        Check(
            "key_resolution",
            case.name,
            "wall time vs least a rolling window allows",
            figures["first_wall_vs_least_pct"],
            "<=",
            105.0,
            "%",
        ),
        Check("key_resolution", case.name, "pairs created, cached", figures["cached_created"], ">=", pairs),
        Check(
            "key_resolution",
            case.name,
            "resolution reads with key_cache_path",
            figures["cached_resolution_reads"],
            "<=",
            0,
        ),
        Check(
            "key_resolution",
            case.name,
            f"extra peak RSS of {sizes.key_memory_keys:,} distinct keys vs record ids",
            figures["memory_extra_peak_rss_mib"],
            "<=",
            MEMORY_BUDGET_MIB,
            " MiB",
        ),
    ]
    return [case]


def _memory(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """Peak RSS of ``key_memory_keys`` pairs whose contacts are all distinct emails, against the same
    pairs as record ids; no limit and no latency, one stand-in seeded with every contact.

    :return: the figures (``memory_*``) and the two client runs.
    """
    keys = ctx.sizes.key_memory_keys
    companies = ctx.sizes.key_companies
    by_key = ensure_keys_csv(ctx.data_dir, keys, keys, companies, from_keys=True, to_keys=False)
    by_id = ensure_keys_csv(ctx.data_dir, keys, keys, companies, from_keys=False, to_keys=False)
    ctx.runner.say(f"key_resolution memory: {keys:,} distinct emails vs record ids, no limit")
    config = _seeded(standin_config(rate_limit=None, latency_ms=0.0, jitter_ms=0.0), keys, companies)
    options = {"operator_kwargs": {"from_id_property": "email", "max_failed_ratio": 0.0}}
    with ctx.standin(config, "keys-memory") as standin:
        keyed = ctx.runner.run("operator", standin, by_key, "keys-memory-keys", **options)
        plain = ctx.runner.run("operator", standin, by_id, "keys-memory-ids")
    extra = (keyed["maxrss_kb"] - plain["maxrss_kb"]) / 1024
    figures = {
        "memory_distinct_keys": keys,
        "memory_peak_rss_keys_mib": round(keyed["maxrss_kb"] / 1024, 1),
        "memory_peak_rss_ids_mib": round(plain["maxrss_kb"] / 1024, 1),
        "memory_vm_hwm_keys_mib": round(keyed.get("vm_hwm_kb", 0) / 1024, 1),
        "memory_vm_hwm_ids_mib": round(plain.get("vm_hwm_kb", 0) / 1024, 1),
        "memory_extra_peak_rss_mib": round(extra, 1),
        "memory_created_keys": keyed["created"],
        "memory_created_ids": plain["created"],
        "memory_wall_s_keys": round(keyed["wall_s"], 2),
        "memory_wall_s_ids": round(plain["wall_s"], 2),
    }
    return figures, {"memory_keys": keyed, "memory_ids": plain}
