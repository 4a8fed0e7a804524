"""The sync state: the pointer, the lease (write, read back, compare) and the generation check at commit."""

from __future__ import annotations

import json

import pytest

from airflow_hubspot_assoc.exceptions import HubSpotError
from airflow_hubspot_assoc.sync.state import Pointer, SyncConflictError, SyncState, run_key, snapshot_name


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def state(path, owner: str, clock: Clock | None = None, **kwargs) -> SyncState:
    return SyncState(str(path), owner, clock=clock or Clock(), settle_seconds=0.0, **kwargs)


def test_a_new_state_path_is_generation_zero(tmp_path):
    pointer = state(tmp_path / "s", "a").read_pointer()
    assert pointer == Pointer(0, None, ())


def test_run_key_is_name_safe_and_stable():
    assert run_key("d", "scheduled__2026-01-01T00:00:00+00:00", "sync", -1) == (
        "d--scheduled__2026-01-01T00_00_00_00_00--sync--unmapped"
    )
    assert run_key("d", "r", "t", 3).endswith("--map_3")


def test_commit_writes_the_snapshot_then_the_pointer_and_keeps_history(tmp_path):
    a = state(tmp_path, "a")
    a.acquire()
    written = []

    def write(location: str, generation: int) -> None:
        written.append((location, generation))
        (tmp_path / location.rsplit("/", 1)[-1]).write_text("snapshot")

    assert a.commit(0, write, {"created": 3}) == 1
    assert written == [(f"{tmp_path}/{snapshot_name(1)}", 1)]
    pointer = a.read_pointer()
    assert (pointer.generation, pointer.snapshot) == (1, "snapshot-00000001.bin")
    assert pointer.history == ({"created": 3, "generation": 1},)
    a.release()
    assert not (tmp_path / "lease.json").exists()


def test_another_live_lease_refuses_and_an_expired_one_is_taken_over(tmp_path):
    clock = Clock()
    a, b = state(tmp_path, "a", clock, lease_seconds=60), state(tmp_path, "b", clock)
    a.acquire()
    with pytest.raises(
        SyncConflictError, match=r"Another sync run \(a\) holds the lease .* \(for 60 s more\)"
    ):
        b.acquire()
    clock.now += 61
    b.acquire()
    assert json.loads((tmp_path / "lease.json").read_text())["owner"] == "b"
    # a no longer holds it: its commit is refused
    with pytest.raises(SyncConflictError, match=r"\(b\) holds the lease"):
        a.commit(0, lambda *_: None, {})
    assert a.read_pointer().generation == 0


def test_a_retry_of_the_same_task_instance_takes_its_own_lease_over(tmp_path):
    state(tmp_path, "same").acquire()  # the crashed try never released it
    state(tmp_path, "same").acquire()


def test_the_later_writer_wins_the_read_back_race(tmp_path):
    """Both read "no lease"; b writes while a waits to read back: a sees b's token and gives up."""
    b = state(tmp_path, "b")

    def settle(_seconds: float) -> None:
        # b read "no lease" before a wrote; its write lands between a's write and a's read-back
        b._token = "b-token"
        b._write_lease()

    a = SyncState(str(tmp_path), "a", settle_seconds=0.1, sleep=settle)
    with pytest.raises(SyncConflictError, match=r"\(b\) holds the lease"):
        a.acquire()
    b.check_lease()


def test_commit_refuses_when_the_generation_moved_on(tmp_path):
    a = state(tmp_path, "a")
    a.acquire()
    a.commit(0, lambda *_: None, {})
    with pytest.raises(SyncConflictError, match="moved on from generation 0 to 1"):
        a.commit(0, lambda *_: None, {})
    assert a.read_pointer().generation == 1


def test_a_broken_pointer_is_reported(tmp_path):
    (tmp_path / "state.json").write_text('{"generation": 2}')
    with pytest.raises(HubSpotError, match="names no snapshot for generation 2"):
        state(tmp_path, "a").read_pointer()


def test_the_operator_checks_its_lease_arguments():
    from airflow_hubspot_assoc.operators.sync import SyncAssociationsOperator

    common = dict(
        task_id="s", from_object_type="contacts", to_object_type="companies", pairs=[], state_path="/tmp/s"
    )
    with pytest.raises(ValueError, match="lease_seconds must be a positive number of seconds, got 0"):
        SyncAssociationsOperator(lease_seconds=0, **common)
    with pytest.raises(ValueError, match="mode must be one of upsert, mirror, got 'both'"):
        SyncAssociationsOperator(mode="both", **common)
    with pytest.raises(ValueError, match="max_removal_ratio must be None or between 0 and 1, got 2"):
        SyncAssociationsOperator(max_removal_ratio=2, **common)
    with pytest.raises(ValueError, match=r"checkpoint_path .* is not used by a sync"):
        SyncAssociationsOperator(checkpoint_path="/tmp/c", **common)
    with pytest.raises(ValueError, match="cannot be a dry run too"):
        SyncAssociationsOperator(plan_path="/tmp/p.json", dry_run=True, **common)
    op = SyncAssociationsOperator(
        task_id="apply",
        from_object_type="contacts",
        to_object_type="companies",
        state_path="/s",
        plan_path="/p",
    )
    assert op.pairs is None and op.pairs_path is None
