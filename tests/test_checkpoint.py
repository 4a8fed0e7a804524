"""Storage without folder semantics, and the checkpoint writer that keeps up with the load.

The same code runs against a real S3 API in ``tests/integration/test_object_storage.py``; here it runs
on local disk and on a store that is slow on purpose, to show the coalescing.
"""

from __future__ import annotations

import logging
import threading
import time

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.checkpoint import CheckpointSaver, CheckpointStore, checkpoint_key

LOG = logging.getLogger("test.checkpoint")


def test_a_url_without_a_connection_is_named_in_a_warning():
    warning = storage.describe_connection("s3://bucket/key")
    assert warning is not None and "s3://<conn_id>@bucket/key" in warning
    assert storage.describe_connection("s3://aws_default@bucket/key") is None
    for local in ("/data/x.csv", "file:///data/x.csv", "memory://bucket/x"):
        assert storage.describe_connection(local) is None


def test_replace_text_leaves_no_temporary_file_and_makes_missing_folders(tmp_path):
    target = tmp_path / "a" / "b" / "state.json"
    storage.replace_text(str(target), "one")
    storage.replace_text(str(target), "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]
    assert storage.read_text(str(tmp_path / "missing")) is None


def test_remove_empty_folders_stops_at_a_folder_still_in_use(tmp_path):
    (tmp_path / "run" / "task" / "map_0").mkdir(parents=True)
    (tmp_path / "run" / "task" / "map_1").mkdir(parents=True)
    (tmp_path / "run" / "task" / "map_1" / "state.json").write_text("{}")
    storage.remove_empty_folders(str(tmp_path / "run" / "task" / "map_0"), 3)
    assert not (tmp_path / "run" / "task" / "map_0").exists()
    assert (tmp_path / "run" / "task" / "map_1" / "state.json").exists()


class SlowStore(CheckpointStore):
    """A store whose state writes take ``delay`` seconds (an object store's round trip)."""

    def __init__(self, base: str, delay: float) -> None:
        super().__init__(base, checkpoint_key("d", "r", "t", -1))
        self.delay = delay
        self.states_written: list[int] = []

    def write_state(self, state):
        time.sleep(self.delay)
        super().write_state(state)
        self.states_written.append(state["rows"])


def test_the_saver_coalesces_states_and_never_blocks_the_load(tmp_path):
    store = SlowStore(str(tmp_path), delay=0.05)
    saver = CheckpointSaver(store, LOG)
    started = time.monotonic()
    for row in range(1, 201):
        saver.submit({"rows": row}, [{"line": row}] if row % 10 == 0 else [])
    handed_over_in = time.monotonic() - started
    assert saver.flush(timeout=30)
    saver.close()

    assert handed_over_in < 0.05 * 5, "submit waited for storage"
    # one write in flight: far fewer writes than states, and the last state is the one on disk
    assert 1 <= len(store.states_written) < 20
    assert store.states_written[-1] == 200
    state = CheckpointStore(str(tmp_path), checkpoint_key("d", "r", "t", -1)).load()
    assert state is not None and state["rows"] == 200
    # every failed pair handed over is in a part the state lists, in order
    assert [e["line"] for e in store.failed_entries(state)] == list(range(10, 201, 10))


def test_closing_with_discard_writes_nothing_more(tmp_path):
    store = SlowStore(str(tmp_path), delay=0.2)
    saver = CheckpointSaver(store, LOG)
    saver.submit({"rows": 1}, [])
    time.sleep(0.05)  # the first write is under way
    saver.submit({"rows": 2}, [])  # queued behind it
    saver.close(discard=True)
    written = list(store.states_written)
    time.sleep(0.3)
    assert written == [1] and store.states_written == [1], "a queued state was written after close"


def test_a_failed_write_is_retried_with_the_newest_state_and_keeps_its_failed_pairs(tmp_path):
    store = CheckpointStore(str(tmp_path), "k")
    real_write_part = store.write_part
    failing = threading.Event()
    failing.set()

    def write_part(entries):
        if failing.is_set():
            raise OSError("disk full")
        real_write_part(entries)

    store.write_part = write_part  # type: ignore[method-assign]  # a storage fault on demand
    saver = CheckpointSaver(store, LOG)
    saver.submit({"rows": 1}, [{"line": 1}])
    deadline = time.monotonic() + 10
    while saver.write_errors == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    saver.submit({"rows": 2}, [{"line": 2}])
    failing.clear()
    assert saver.flush(timeout=30)
    saver.close()
    state = store.load()
    assert state is not None and state["rows"] == 2
    assert [e["line"] for e in store.failed_entries(state)] == [1, 2]
