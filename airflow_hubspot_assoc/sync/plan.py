"""A sync's plan: the changes computed against one generation of the state, applied exactly later.

A plan is a small JSON manifest and three triple sets beside it, written in the snapshot format
(``snapshot.write_snapshot``): ``creates`` (to create), ``removals`` (to remove, mirror mode) and
``forget`` (snapshot pairs that are neither desired nor in HubSpot any more, found by a reconcile read:
they leave the snapshot without a write). The manifest names the generation it was computed against
(``stateGeneration``) and the type table of the codes in its sets.

Two kinds of plans share this format: the dry run's (``plans/plan-<generation>-<time>.json``, applied
later with ``plan_path=``) and every run's own (``runs/<run key>/plan.json``, written before the
first write, so that a retry after a crash applies the same changes instead of diffing again against
a HubSpot that already shows part of the run). Either is refused before any write when the state is
no longer at ``stateGeneration``. A dry run deletes the dry-run plans that can no longer be applied and
keeps at most ``KEEP_PLANS`` of the rest (``prune_plans``).
"""

from __future__ import annotations

import json
import logging
import pathlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.exceptions import HubSpotError
from airflow_hubspot_assoc.sync.snapshot import SnapshotMeta, read_snapshot, write_snapshot
from airflow_hubspot_assoc.sync.state import SyncConflictError

if TYPE_CHECKING:
    from airflow_hubspot_assoc.sync.triples import TripleSet

PLAN_VERSION = 1
SETS = ("creates", "removals", "forget")
#: Dry-run plans of the current generation a state keeps (``prune_plans``).
KEEP_PLANS = 20
_PLAN_NAME = re.compile(r"plan-\d{8}-\d{8}T\d{12}Z\.json")


@dataclass(frozen=True)
class Plan:
    """The changes of one run, as computed (or as read back from a manifest)."""

    state_generation: int
    mode: str
    from_type: str
    to_type: str
    portal: str | None
    types: tuple[tuple[str, int], ...]
    creates: TripleSet
    removals: TripleSet
    forget: TripleSet
    unchanged: int
    snapshot_pairs: int
    reconciled: int = 0
    #: What reading the input found: ``total``, ``invalid``, ``unresolved``, ``duplicates`` (rows/triples).
    input_counts: dict[str, int] = field(default_factory=dict)
    location: str | None = None

    def counts(self) -> dict[str, int]:
        """``planned`` of the record: how many triples to create and to remove."""
        return {"creates": len(self.creates), "removals": len(self.removals)}


def dry_run_location(state_base: str, generation: int) -> str:
    """Where a dry run writes its plan: one manifest per run, named by generation and time."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{state_base}/plans/plan-{generation:08d}-{stamp}.json"


def prune_plans(state_base: str, generation: int, log: logging.Logger, keep: int = KEEP_PLANS) -> int:
    """Delete the dry-run plans under ``plans/`` that can no longer be applied (computed against a
    generation older than ``generation``: ``check_current`` would refuse them) and all but the newest
    ``keep`` of the others; :return: plans deleted.

    Why: every dry run writes a plan of its own and nothing else ever removes one, so a daily dry run
    would pile them up for ever. The manifest goes first and its sets after it: a plan is whole or
    absent, never a manifest naming deleted sets. Deletions that fail are logged and left behind.
    """
    folder = storage.location(f"{state_base}/plans")
    files = {child.name: child for child in storage.files_under(folder)}
    manifests = sorted(
        (name for name in files if _PLAN_NAME.fullmatch(name)), reverse=True
    )  # newest first: plan-<generation>-<time>
    current = [n for n in manifests if int(n.split("-")[1]) >= generation]
    doomed = [n for n in manifests if n not in current[:keep]]
    for name in doomed:
        stem = name.removesuffix(".json")
        if storage.delete_quietly(files[name], log):
            for set_name in SETS:
                if (target := files.get(f"{stem}-{set_name}.bin")) is not None:
                    storage.delete_quietly(target, log)
    if doomed:
        log.info(
            "Deleted %d old dry-run plan(s) under %s/plans (kept the newest %d).",
            len(doomed),
            state_base,
            keep,
        )
    return len(doomed)


def write_plan(location: str, plan: Plan) -> Plan:
    """Write the three sets, then the manifest that names them (last: a manifest is whole or absent)."""
    stem = location.removesuffix(".json")
    sets: dict[str, Any] = {}
    for name in SETS:
        triples: TripleSet = getattr(plan, name)
        target = f"{stem}-{name}.bin"
        write_snapshot(target, triples, _meta(plan, len(triples)))
        sets[name] = {"path": target.rsplit("/", 1)[-1], "count": len(triples)}
    manifest = {
        "version": PLAN_VERSION,
        "stateGeneration": plan.state_generation,
        "mode": plan.mode,
        "fromObjectType": plan.from_type,
        "toObjectType": plan.to_type,
        "portal": plan.portal,
        "types": [list(t) for t in plan.types],
        "unchanged": plan.unchanged,
        "snapshotPairs": plan.snapshot_pairs,
        "reconciled": plan.reconciled,
        "input": plan.input_counts,
        "createdAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        **sets,
    }
    storage.replace_text(location, json.dumps(manifest, indent=1))
    return Plan(**{**plan.__dict__, "location": location})


def read_plan(location: str, workdir: pathlib.Path) -> Plan | None:
    """The plan at ``location`` with its sets on local disk, or None when there is none."""
    text = storage.read_text(location)
    if text is None:
        return None
    try:
        raw = json.loads(text)
        if raw.get("version") != PLAN_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {PLAN_VERSION}")
        folder = location.rsplit("/", 1)[0] if "/" in location else "."
        sets = {}
        for name in SETS:
            sets[name], _ = read_snapshot(f"{folder}/{raw[name]['path']}", workdir / name)
        return Plan(
            state_generation=int(raw["stateGeneration"]),
            mode=str(raw["mode"]),
            from_type=str(raw["fromObjectType"]),
            to_type=str(raw["toObjectType"]),
            portal=raw.get("portal"),
            types=tuple((str(c), int(i)) for c, i in raw["types"]),
            unchanged=int(raw["unchanged"]),
            snapshot_pairs=int(raw["snapshotPairs"]),
            reconciled=int(raw.get("reconciled", 0)),
            input_counts={str(k): int(v) for k, v in (raw.get("input") or {}).items()},
            location=location,
            **sets,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise HubSpotError(f"{location} is not a sync plan ({err})") from err


def check_current(plan: Plan, generation: int, from_type: str, to_type: str) -> None:
    """Refuse, before any write, a plan made against another generation or another object pair."""
    if (plan.from_type, plan.to_type) != (from_type, to_type):
        raise HubSpotError(
            f"The plan {plan.location} is for {plan.from_type} -> {plan.to_type}, not {from_type} -> "
            f"{to_type}; nothing was sent"
        )
    if plan.state_generation != generation:
        raise SyncConflictError(
            f"The plan {plan.location} was computed against generation {plan.state_generation} of the "
            f"sync state, which is now at generation {generation}: the state moved on since the plan was "
            "made, so it is refused and nothing was sent. Make a new plan (dry_run=True)."
        )


def _meta(plan: Plan, pairs: int) -> SnapshotMeta:
    return SnapshotMeta(
        generation=plan.state_generation,
        types=plan.types,
        from_object_type=plan.from_type,
        to_object_type=plan.to_type,
        portal=plan.portal,
        pairs=pairs,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
