"""Sync plans: written whole, read back exactly, refused when stale; and the sync record's own keys."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.record import BatchRecord
from airflow_hubspot_assoc.record_parse import split_samples
from airflow_hubspot_assoc.record_sync import SyncCounts
from airflow_hubspot_assoc.sync.plan import Plan, check_current, prune_plans, read_plan, write_plan
from airflow_hubspot_assoc.sync.state import SyncConflictError
from airflow_hubspot_assoc.sync.triples import TripleSet

SET_SUFFIXES = ("-creates.bin", "-removals.bin", "-forget.bin")


def plan(tmp_path) -> Plan:
    return Plan(
        state_generation=4,
        mode="mirror",
        from_type="contacts",
        to_type="companies",
        portal="123",
        types=(("HUBSPOT_DEFINED", 1), ("USER_DEFINED", 9)),
        creates=TripleSet.from_triples(tmp_path, [(2, 20, 1), (1, 10, 0)]),
        removals=TripleSet.from_triples(tmp_path, [(3, 30, 0)]),
        forget=TripleSet.empty(tmp_path),
        unchanged=7,
        snapshot_pairs=8,
        reconciled=2,
        input_counts={"total": 9, "invalid": 0, "unresolved": 0, "duplicates": 0},
    )


def test_pruning_deletes_plans_that_cannot_apply_and_keeps_the_newest(tmp_path):
    state = str(tmp_path / "state")
    written = []
    for generation, minute in [(3, 0), (3, 1)] + [(4, m) for m in range(23)]:
        location = f"{state}/plans/plan-{generation:08d}-20260101T00{minute:02d}00000000Z.json"
        written.append(write_plan(location, plan(tmp_path / "w" / str(minute))).location)
    other = tmp_path / "state" / "plans" / "notes.txt"  # not a plan: never touched
    other.write_text("keep me")
    log = logging.getLogger("test")
    assert prune_plans(state, 4, log, keep=20) == 5  # 2 of generation 3, the 3 oldest of generation 4
    left = sorted(p.name for p in (tmp_path / "state" / "plans").iterdir())
    kept = [w.rsplit("/", 1)[1].removesuffix(".json") for w in written[5:]]
    assert left == sorted(
        ["notes.txt"] + [f"{stem}{suffix}" for stem in kept for suffix in (".json", *SET_SUFFIXES)]
    )
    newest = read_plan(written[-1], tmp_path / "r")
    assert newest is not None and list(newest.creates) == [(1, 10, 0), (2, 20, 1)]
    assert read_plan(written[0], tmp_path / "r0") is None
    assert prune_plans(state, 4, log, keep=20) == 0  # nothing more to do
    assert prune_plans(state, 5, log) == 20  # the state moved on: none of them can apply any more
    assert [p.name for p in (tmp_path / "state" / "plans").iterdir()] == ["notes.txt"]


def test_a_plan_reads_back_as_written(tmp_path):
    location = str(tmp_path / "state" / "plans" / "plan-1.json")
    written = write_plan(location, plan(tmp_path / "w"))
    assert written.location == location
    back = read_plan(location, tmp_path / "r")
    assert back is not None
    assert list(back.creates) == [(1, 10, 0), (2, 20, 1)]
    assert list(back.removals) == [(3, 30, 0)]
    assert len(back.forget) == 0
    assert back.types == (("HUBSPOT_DEFINED", 1), ("USER_DEFINED", 9))
    assert (back.state_generation, back.mode, back.unchanged, back.snapshot_pairs, back.reconciled) == (
        4,
        "mirror",
        7,
        8,
        2,
    )
    assert back.counts() == {"creates": 2, "removals": 1}
    assert read_plan(str(tmp_path / "none.json"), tmp_path / "r2") is None


def test_a_stale_plan_or_one_for_another_object_pair_is_refused(tmp_path):
    p = plan(tmp_path)
    check_current(p, 4, "contacts", "companies")
    with pytest.raises(SyncConflictError, match=r"computed against generation 4 .* now at generation 5"):
        check_current(p, 5, "contacts", "companies")
    with pytest.raises(Exception, match="is for contacts -> companies, not contacts -> deals"):
        check_current(p, 4, "contacts", "deals")


def sync_record(**counts) -> BatchRecord:
    return BatchRecord(
        status="COMPLETE",
        from_type="contacts",
        to_type="companies",
        operation="sync",
        created=3,
        removed=2,
        sync=SyncCounts(**counts),
    )


def test_a_sync_record_round_trips_and_parses_strictly():
    record = sync_record(unchanged=5, planned_creates=3, planned_removals=2, snapshot_pairs=6, plan_path="/p")
    raw = record.to_xcom()
    assert raw["operation"] == "sync" and raw["removed"] == 2
    assert raw["planned"] == {"creates": 3, "removals": 2}
    assert (raw["unchanged"], raw["snapshotPairs"], raw["reconciled"], raw["planPath"]) == (5, 6, 0, "/p")
    assert BatchRecord.from_xcom(raw) == record
    assert "3 created, 2 removed, 5 unchanged" in record.summary()
    with pytest.raises(ValueError, match=r"planned must be an object"):
        BatchRecord.from_xcom({**raw, "planned": 3})
    with pytest.raises(ValueError, match=r"'planned\.removals' must be a non-negative integer"):
        BatchRecord.from_xcom({**raw, "planned": {"creates": 1, "removals": -1}})
    with pytest.raises(ValueError, match=r"\(sync counts exactly for sync\), got 'sync' without sync counts"):
        BatchRecord(status="COMPLETE", from_type="contacts", to_type="companies", operation="sync")
    # a create record keeps its shape: no sync keys
    create = BatchRecord(status="COMPLETE", from_type="contacts", to_type="companies").to_xcom()
    assert "planned" not in create and "operation" not in create


def test_a_sync_record_samples_its_removals_at_the_top_level_as_a_revert_does():
    created = AssociationPair("1", "101", frozenset({AssociationType("HUBSPOT_DEFINED", 1)}))
    removed = AssociationPair("2", "102", frozenset({AssociationType("HUBSPOT_DEFINED", 1)}))
    record = dataclasses.replace(sync_record(), sample=(created,), removed_sample=(removed,))
    raw = record.to_xcom()
    assert raw["removedSample"] == [removed.as_dict()] and raw["sample"] == [created.as_dict()]
    assert BatchRecord.from_xcom(raw) == record and record.written == 5  # 3 created + 2 removed
    # a sync record always carries the key (its JSON shape did before the merge); a create never does
    assert sync_record().to_xcom()["removedSample"] == []
    with pytest.raises(ValueError, match="removedSample belongs to a revert or sync record"):
        BatchRecord.from_xcom({**raw, "operation": "create", "planned": None})
    with pytest.raises(ValueError, match="removedSample items need 'types'"):
        BatchRecord.from_xcom({**raw, "removedSample": [{"from": "2", "to": "102"}]})
    # both samples share the record's bound of 100
    with pytest.raises(ValueError, match="sample holds at most 100"):
        dataclasses.replace(record, sample=(created,) * 50, removed_sample=(removed,) * 51)


def test_split_samples_keeps_both_kinds_within_the_bound():
    a = [AssociationPair(str(i), "9", frozenset()) for i in range(80)]
    b = [AssociationPair("9", str(i), frozenset()) for i in range(80)]
    assert tuple(map(len, split_samples(a, b, 100))) == (50, 50)
    assert tuple(map(len, split_samples(a[:10], b, 100))) == (10, 80)
    assert tuple(map(len, split_samples(a, b[:5], 100))) == (80, 5)
