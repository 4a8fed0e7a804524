"""Snapshots: a round trip on local disk and on S3 (moto server), the cheap meta read, atomic
replacement (a failed write leaves the old snapshot), and refusals of damaged or foreign files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from airflow.sdk.io import store
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_hubspot_assoc.sync import codec, setfile
from airflow_hubspot_assoc.sync.snapshot import (
    MAGIC,
    SnapshotMeta,
    read_snapshot,
    read_snapshot_meta,
    write_snapshot,
)
from airflow_hubspot_assoc.sync.triples import TripleSet
from tests.s3_server import CONN_ID, S3Server, moto_s3_server

MAX_ID = 2**63 - 1
TYPES = (("HUBSPOT_DEFINED", 279), ("USER_DEFINED", 12), ("HUBSPOT_DEFINED", 1))


def meta(pairs: int, generation: int = 1, portal: str | None = "12345") -> SnapshotMeta:
    return SnapshotMeta(
        generation=generation,
        types=TYPES,
        from_object_type="contacts",
        to_object_type="companies",
        portal=portal,
        pairs=pairs,
        created_at="2026-12-06T04:00:00+00:00",
    )


def sample(workdir: Path, n: int = 20_000, seed: int = 1) -> TripleSet:
    rng = np.random.default_rng(seed)
    rows = np.stack([rng.integers(1, 5000, n), rng.integers(1, 10**11, n), rng.integers(0, 3, n)], axis=1)
    return TripleSet.from_triples(workdir, rows)


def test_round_trip_on_local_disk(tmp_path):
    triples = sample(tmp_path)
    target = tmp_path / "state" / "snapshot-00000001.bin"
    written = write_snapshot(str(target), triples, meta(len(triples)))
    assert written == target.stat().st_size
    # Sorted gaps, byte-transposed, compress well below the 24 bytes of a record.
    assert written < 12 * len(triples)
    back, back_meta = read_snapshot(str(target), tmp_path / "work")
    assert back_meta == meta(len(triples))
    assert list(back) == list(triples)
    assert read_snapshot_meta(str(target)) == back_meta
    assert not [p for p in target.parent.iterdir() if p.name != target.name], "no temporary file left"
    sibling = tmp_path / "state" / "written-as-usual"
    sibling.write_text("")
    assert target.stat().st_mode & 0o777 == sibling.stat().st_mode & 0o777, "the umask applies"


def test_an_empty_snapshot_and_a_null_portal(tmp_path):
    target = str(tmp_path / "empty.bin")
    write_snapshot(target, TripleSet.empty(tmp_path), meta(0, portal=None))
    back, back_meta = read_snapshot(target, tmp_path)
    assert (list(back), back_meta.portal, back_meta.types) == ([], None, TYPES)


def test_an_absent_snapshot_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_snapshot(str(tmp_path / "nothing.bin"), tmp_path)
    with pytest.raises(FileNotFoundError):
        read_snapshot_meta(str(tmp_path / "nothing.bin"))


def test_a_failed_write_leaves_the_old_snapshot_whole(tmp_path):
    target = str(tmp_path / "snapshot.bin")
    old = TripleSet.from_triples(tmp_path, [(1, 2, 0)])
    write_snapshot(target, old, meta(1))
    # Type code 7 is past the table of 3 types: found while the blocks are written, after the header.
    bad = TripleSet.from_triples(tmp_path, [(1, 2, 0), (2, 3, 7)])
    with pytest.raises(ValueError, match="type code 7 has no entry in the type table of 3 types"):
        write_snapshot(target, bad, meta(2, generation=2))
    back, back_meta = read_snapshot(target, tmp_path)
    assert (list(back), back_meta.generation) == ([(1, 2, 0)], 1)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_meta_must_count_the_triples(tmp_path):
    with pytest.raises(ValueError, match=r"meta\.pairs is 5 but the set has 1 triples"):
        write_snapshot(str(tmp_path / "s.bin"), TripleSet.from_triples(tmp_path, [(1, 2, 0)]), meta(5))


def test_damaged_and_foreign_files_are_refused(tmp_path):
    target = tmp_path / "snapshot.bin"
    write_snapshot(str(target), sample(tmp_path, 5000), meta(5000))
    data = target.read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[: len(data) - 10])
    with pytest.raises(ValueError, match="ends early"):
        read_snapshot(str(truncated), tmp_path)
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(b"PAR1" + data[4:])
    with pytest.raises(ValueError, match="not a sync snapshot"):
        read_snapshot_meta(str(foreign))
    damaged = tmp_path / "damaged.bin"
    damaged.write_bytes(data[:-200] + bytes(b ^ 0xFF for b in data[-200:]))
    work = tmp_path / "work"
    with pytest.raises(ValueError, match="damaged"):
        read_snapshot(str(damaged), work)
    assert list(work.iterdir()) == [], "the half-read set is deleted"
    huge_header = tmp_path / "huge.bin"
    huge_header.write_bytes(MAGIC + (2**40).to_bytes(8, "little"))
    with pytest.raises(ValueError, match="damaged"):
        read_snapshot_meta(str(huge_header))


def test_meta_from_json_names_what_is_wrong():
    values = meta(3).to_json()
    del values["created_at"]
    with pytest.raises(ValueError, match="created_at"):
        SnapshotMeta.from_json(values)


EDGES = [1, 255, 256, 2**56, 2**62, MAX_ID]
ids = st.one_of(st.integers(1, 30), st.sampled_from(EDGES), st.integers(1, MAX_ID))


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.tuples(ids, ids, st.integers(0, 300)), max_size=80))
def test_codec_round_trips_sorted_records(items):
    # Whole to ids near 2^63 under many from ids overflow a running sum: decoding must still be exact.
    unique = sorted(set(items))
    records = setfile.sort_unique(
        setfile.pack(*(np.array(column, dtype=np.int64) for column in zip(*unique, strict=True)))
        if unique
        else np.empty(0, dtype=setfile.RECORD)
    )
    back = codec.decode(codec.encode(records), records.size)
    assert setfile.unpack(back).tolist() == [list(t) for t in unique]


@pytest.mark.slow
def test_round_trip_on_s3_and_a_failed_upload_keeps_the_old_object():
    with moto_s3_server() as server, pytest.MonkeyPatch.context() as env, tempfile.TemporaryDirectory() as d:
        env.setenv("AIRFLOW_CONN_AWS_DEFAULT", server.connection_json())
        # Airflow caches one store per connection for the process: start from none, so an earlier
        # test module's server (stopped by now) is not reached, and leave none behind for the next.
        env.setattr(store, "_STORE_CACHE", {})
        work = Path(d)
        run_on_s3(server, work)


def run_on_s3(server: S3Server, work: Path) -> None:
    bucket = server.create_bucket("sync-snapshots")
    url = f"s3://{CONN_ID}@{bucket}/state/snapshot-00000001.bin"
    triples = sample(work, 30_000, seed=2)
    written = write_snapshot(url, triples, meta(len(triples)))
    listed = server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("state/snapshot-00000001.bin", written)]
    assert read_snapshot_meta(url) == meta(len(triples))
    back, back_meta = read_snapshot(url, work / "read")
    assert (list(back), back_meta) == (list(triples), meta(len(triples)))
    bad = TripleSet.from_triples(work, [(1, 2, 0), (2, 3, 9)])
    with pytest.raises(ValueError, match="type code 9"):
        write_snapshot(url, bad, meta(2, generation=2))
    assert read_snapshot_meta(url).generation == 1
    listed = server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("state/snapshot-00000001.bin", written)]
    with pytest.raises(FileNotFoundError):
        read_snapshot_meta(f"s3://{CONN_ID}@{bucket}/state/snapshot-00000002.bin")
