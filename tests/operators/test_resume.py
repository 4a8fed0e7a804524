"""Checkpoints: a stopped load resumes after its confirmed rows and ends as an uninterrupted one."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest

from airflow_hubspot_assoc.load import LoadStopped
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator


def context(try_number: int = 1):
    # The operator only reads the task instance's identity here; the crash-and-retry path through
    # real Airflow processes is covered end to end in tests/integration.
    ti = SimpleNamespace(
        dag_id="d",
        run_id="manual__2026-01-01T00:00:00+00:00",
        task_id="create",
        map_index=-1,
        try_number=try_number,
    )
    return {"ti": ti}


def write_pairs(path, n, missing_every=0):
    lines = ["from_id,to_id"] + [f"{i},{100_000 + i}" for i in range(1, n + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.hubspot_standin(latency={"base_ms": 40}, missing_records={"companies": ["100007", "100450"]})
def test_stopped_load_resumes_from_its_checkpoint(hubspot_conn, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.csv", 600)
    failed = tmp_path / "out" / "failed.jsonl"
    kwargs = dict(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(pairs),
        association_type_id=279,
        batch_size=10,
        max_concurrency=2,
        max_burst=2,  # the stand-in announces a window, which would let all 60 batches go at once
        failed_pairs_path=str(failed),
        checkpoint_interval=0.0,
        max_failed_ratio=0.1,
    )
    first = BatchCreateAssociationsOperator(**kwargs)

    def kill_after_some_writes() -> None:
        # Stop by progress, not by time, so a slow or busy machine cannot finish the load first.
        while hubspot_conn.stats.write_requests < 20:
            time.sleep(0.01)
        first.on_kill()

    threading.Thread(target=kill_after_some_writes, daemon=True).start()
    with pytest.raises(LoadStopped):
        first.execute(context())
    sent_first = sum(r.n_inputs for r in hubspot_conn.requests if r.endpoint == "batch_create")
    assert 0 < sent_first < 600
    state = json.loads(
        (
            tmp_path
            / "out"
            / "_checkpoints"
            / "d"
            / "manual__2026-01-01T00_00_00_00_00"
            / "create"
            / "unmapped"
            / "state.json"
        ).read_text()
    )
    confirmed_rows = state["rows"]
    assert 0 < confirmed_rows <= sent_first + 1

    second = BatchCreateAssociationsOperator(**kwargs)
    record = second.execute(context(try_number=2))
    sent_second = sum(r.n_inputs for r in hubspot_conn.requests if r.endpoint == "batch_create") - sent_first
    assert record["resumed"] is True
    assert record["resumedSkipped"] == confirmed_rows
    # only what was not confirmed is sent again: at most the batches in flight at the stop (2 x 10 pairs)
    assert sent_second <= 600 - confirmed_rows + 1
    assert sent_first + sent_second <= 600 + 2 * 2 * 10
    # the same final state as an uninterrupted run
    assert (record["total"], record["created"], record["failed"]) == (600, 598, 2)
    assert record["created"] + record["failed"] + record["invalid"] + record["duplicates"] == record["total"]
    expected = {(str(i), str(100_000 + i)) for i in range(1, 601)} - {("7", "100007"), ("450", "100450")}
    stored = {(f, t) for f, t, _, _ in hubspot_conn.associations("contacts", "companies")}
    assert stored == expected
    assert sorted(json.loads(x)["to_id"] for x in failed.read_text().splitlines()) == ["100007", "100450"]
    # the checkpoint is removed once the load succeeded, with the folders of its key and the
    # _checkpoints folder the operator chose beside the failed pairs
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["failed.jsonl"]


def test_checkpoint_for_another_input_is_ignored(hubspot_conn, tmp_path):
    from airflow_hubspot_assoc.checkpoint import CheckpointStore, checkpoint_key

    pairs = write_pairs(tmp_path / "pairs.csv", 30)
    store = CheckpointStore(
        str(tmp_path / "ck"), checkpoint_key("d", "manual__2026-01-01T00:00:00+00:00", "create", -1)
    )
    store.save({"fingerprint": {"source": "something else"}, "rows": 20, "record": {}}, [])
    sibling = CheckpointStore(
        str(tmp_path / "ck"), checkpoint_key("d", "manual__2026-01-01T00:00:00+00:00", "create", 1)
    )
    sibling.save({"fingerprint": {}, "rows": 1, "record": {}}, [])
    record = BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(pairs),
        association_type_id=279,
        checkpoint_path=str(tmp_path / "ck"),
    ).execute(context())
    assert record["resumed"] is False
    assert record["created"] == 30
    assert store.load() is None
    # a mapped sibling's checkpoint (and so the folders it lives in) stays
    assert sibling.load() is not None
    assert [
        p.name for p in (tmp_path / "ck" / "d" / "manual__2026-01-01T00_00_00_00_00" / "create").iterdir()
    ] == ["map_1"]
