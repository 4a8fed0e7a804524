"""The set engine against Python's sets: every operation, any input order, duplicates, and ids at
the edges (1, 2^63 - 1, values whose bytes are mostly zero, which byte-string comparison must not
trip over)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_hubspot_assoc.sync import setfile
from airflow_hubspot_assoc.sync.triples import (
    Diff,
    TripleSet,
    TripleSpool,
    diff,
    difference,
    intersection,
    union,
)

MAX_ID = 2**63 - 1
EDGE_IDS = [1, 2, 255, 256, 257, 2**32, 2**56, 2**56 + 1, 2**62, MAX_ID - 1, MAX_ID]
ids = st.one_of(st.integers(1, 40), st.sampled_from(EDGE_IDS), st.integers(1, MAX_ID))
codes = st.one_of(st.integers(0, 3), st.sampled_from([255, 256, 2**31]))
triples = st.lists(st.tuples(ids, ids, codes), max_size=60)


def build(workdir: Path, items: list[tuple[int, int, int]], budget: int = 256 * 2**20) -> TripleSet:
    spool = TripleSpool(workdir, memory_budget=budget)
    spool.add_many(items)
    return spool.close()


@settings(max_examples=40, deadline=None)
@given(a=triples, b=triples)
def test_set_operations_match_python_sets(a, b):
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        left, right = build(work, a), build(work, b)
        assert list(left) == sorted(set(a))
        assert len(left) == left.count == len(set(a))
        assert list(left.from_ids()) == sorted({t[0] for t in a})
        assert list(difference(left, right, work)) == sorted(set(a) - set(b))
        assert list(intersection(left, right, work)) == sorted(set(a) & set(b))
        assert list(union(left, right, work)) == sorted(set(a) | set(b))
        both = diff(left, right, work)
        assert list(both.only_a) == sorted(set(a) - set(b))
        assert list(both.only_b) == sorted(set(b) - set(a))
        assert both.common == len(set(a) & set(b))


@settings(max_examples=25, deadline=None)
@given(items=st.lists(st.tuples(ids, ids, codes), max_size=300))
def test_a_tiny_memory_budget_spills_many_runs_and_gives_the_same_set(items):
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        # The smallest buffer is 1,024 triples; a budget of 1 byte means a run every 1,024 adds.
        doubled = items * 4
        many_runs = build(work, doubled, budget=1)
        assert list(many_runs) == sorted(set(items))
        spooled = [p.name for p in work.iterdir() if p.name.startswith("spool-")]
        assert spooled == [], "close() removes the spool's runs"


def test_spills_runs_when_the_buffer_is_full(tmp_path):
    spool = TripleSpool(tmp_path, memory_budget=1)
    for i in range(1, 3000):
        spool.add(i % 7 + 1, i, i % 2)
    runs = list(next(tmp_path.glob("spool-*")).iterdir())
    assert len(runs) == 2  # 2 x 1,024 spilled, the rest still buffered
    result = spool.close()
    assert len(result) == len({(i % 7 + 1, i, i % 2) for i in range(1, 3000)})
    assert list(result)[:2] == [(1, 7, 1), (1, 14, 0)]


def test_numpy_arrays_and_columns_take_the_bulk_path(tmp_path):
    rng = np.random.default_rng(7)
    rows = np.stack(
        [rng.integers(1, 50, 5000), rng.integers(1, 2**40, 5000), rng.integers(0, 3, 5000)], axis=1
    )
    spool = TripleSpool(tmp_path, memory_budget=1)
    spool.add_many(rows[:2500])
    spool.add_columns(rows[2500:, 0].tolist(), rows[2500:, 1], rows[2500:, 2].astype(np.uint8))
    spool.add(1, 1, 0)
    expected = {tuple(r) for r in rows.tolist()} | {(1, 1, 0)}
    assert list(spool.close()) == sorted(expected)


@pytest.mark.parametrize(
    ("triple", "message"),
    [
        ((0, 1, 0), r"1\.\.2\^63-1"),
        ((1, -5, 0), r"1\.\.2\^63-1"),
        ((1, 2**63, 0), r"1\.\.2\^63-1"),
        ((1, 2, -1), "type code must be >= 0"),
    ],
)
def test_add_refuses_ids_out_of_range(tmp_path, triple, message):
    spool = TripleSpool(tmp_path)
    with pytest.raises(ValueError, match=message):
        spool.add(*triple)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (([0, 1], [1, 1], [0, 0]), "from_id: 0 is below 1"),
        (([1, 1], [1, 1], [0, -2]), "type_code: -2 is below 0"),
        ((np.array([2**63], dtype=np.uint64), [1], [0]), "from_id: 9223372036854775808 is above"),
        (([1.5], [1], [0]), "from_id: expected integers"),
        (([1, 2], [1], [0, 0]), "to_id: expected a 1-D column of 2 values"),
    ],
)
def test_add_columns_refuses_bad_columns(tmp_path, columns, message):
    spool = TripleSpool(tmp_path)
    with pytest.raises(ValueError, match=message):
        spool.add_columns(*columns)


@pytest.mark.parametrize(
    ("triples", "message"),
    [
        ([(1, 2, 0), (1.5, 2, 0)], r"three integers, got \(1\.5, 2, 0\)"),
        ([(1, 2, 0), (1, 2**64, 0)], r"record ids must be in 1\.\.2\^63-1, got \(1, 18446744073709551616\)"),
        ([(1, 2, 0), (1, 2**63, 0)], r"record ids must be in 1\.\.2\^63-1, got \(1, 9223372036854775808\)"),
        ([(1, 2, 0), (1, 2)], r"three integers, got \(1, 2\)"),
        ([(1, 2, 0), (0, 2, 0)], "from_id: 0 is below 1"),
        ([(1, 2, 0), (3, 2, -1)], "type_code: -1 is below 0"),
    ],
)
def test_add_many_refuses_what_is_not_three_integers_in_range(tmp_path, triples, message):
    spool = TripleSpool(tmp_path)
    with pytest.raises(ValueError, match=message):
        spool.add_many(iter(triples))
    spool.add_many([])
    assert list(spool.close()) == [], "a refused chunk adds nothing"


def test_add_refuses_a_float_and_keeps_the_buffer_aligned(tmp_path):
    spool = TripleSpool(tmp_path)
    spool.add(1, 2, 0)
    with pytest.raises(ValueError, match="three integers"):
        spool.add(3, 2.5, 0)  # type: ignore[arg-type]
    spool.add(4, 5, 1)
    assert list(spool.close()) == [(1, 2, 0), (4, 5, 1)]


def test_add_many_refuses_an_array_of_the_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match=r"\(n, 3\) array"):
        TripleSpool(tmp_path).add_many(np.ones((4, 2), dtype=np.int64))


def test_a_closed_spool_cannot_be_used(tmp_path):
    spool = TripleSpool(tmp_path)
    spool.add(1, 2, 0)
    spool.close()
    with pytest.raises(RuntimeError, match="closed"):
        spool.add(1, 3, 0)
    with pytest.raises(RuntimeError, match="closed"):
        spool.close()


def test_empty_and_from_triples(tmp_path):
    empty = TripleSet.empty(tmp_path)
    assert (len(empty), list(empty), list(empty.from_ids())) == (0, [], [])
    some = TripleSet.from_triples(tmp_path, [(5, 1, 0), (2, 9, 1), (5, 1, 0)])
    assert list(some) == [(2, 9, 1), (5, 1, 0)]
    result = diff(some, empty, tmp_path)
    assert isinstance(result, Diff)
    assert (list(result.only_a), list(result.only_b), result.common) == ([(2, 9, 1), (5, 1, 0)], [], 0)


def test_a_set_file_reopens_and_refuses_a_foreign_file(tmp_path):
    some = TripleSet.from_triples(tmp_path, [(3, 4, 1), (1, 2, 0)])
    assert list(TripleSet(some.path)) == [(1, 2, 0), (3, 4, 1)]
    foreign = tmp_path / "foreign.set"
    foreign.write_bytes(b"x" * setfile.header_size())
    with pytest.raises(ValueError, match="not a set of triples"):
        TripleSet(foreign)
    some.remove()
    assert not some.path.exists()


def test_iteration_reads_partitions_in_chunks_and_merges_them_in_order(tmp_path):
    # Over 4,096 rows (one chunk) under each from id, so partitions are read in several chunks.
    rng = np.random.default_rng(3)
    rows = np.stack(
        [rng.integers(1, 50, 300_000), rng.integers(1, 10**12, 300_000), rng.integers(0, 2, 300_000)],
        axis=1,
    )
    spool = TripleSpool(tmp_path)
    spool.add_many(rows)
    result = spool.close()
    expected = np.unique(rows, axis=0)
    assert len(result) == expected.shape[0]
    assert list(result) == [tuple(r) for r in expected.tolist()]
    assert list(result.from_ids()) == np.unique(rows[:, 0]).tolist()


_BOUNDED = """
import sys, tempfile
from pathlib import Path
import numpy as np
from airflow_hubspot_assoc.sync.triples import TripleSpool, diff

def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024

work = Path(sys.argv[1])
total, budget = 3_000_000, 8 * 2**20
sets = []
start = hwm()
for shift in (0, 30_000):
    spool = TripleSpool(work, memory_budget=budget)
    for offset in range(0, total, 100_000):
        n = np.arange(offset + shift, offset + shift + 100_000, dtype=np.int64)
        spool.add_columns(1 + n // 5, 1 + (n * 2_654_435_761) % 10_000_000_019, n % 3)
    sets.append(spool.close())
changes = diff(sets[1], sets[0], work)
print(len(changes.only_a), len(changes.only_b), changes.common, hwm() - start)
"""


@pytest.mark.slow
def test_memory_stays_bounded_by_partitions_not_by_the_sets(tmp_path):
    # Two sets of 3,000,000 triples (72 MB of records each) spooled with an 8 MiB budget and diffed:
    # whole sets in memory would add over 150 MiB; a partition at a time adds a few.
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _BOUNDED, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    only_a, only_b, common, growth_mib = (int(v) for v in done.stdout.split())
    assert (only_a, only_b, common) == (30_000, 30_000, 2_970_000)
    assert growth_mib < 48, f"peak RSS grew by {growth_mib} MiB"


def test_from_ids_crosses_chunks_in_order(tmp_path):
    rng = np.random.default_rng(11)
    froms = rng.integers(1, 2**62, 20_000)
    spool = TripleSpool(tmp_path)
    spool.add_columns(np.repeat(froms, 2), np.tile([5, 6], froms.size), np.zeros(2 * froms.size, int))
    assert list(spool.close().from_ids()) == np.unique(froms).tolist()


@pytest.mark.parametrize("small_first", [True, False])
def test_set_operations_with_one_side_much_smaller(tmp_path, small_first):
    # Each side is searched in the other depending on which is smaller: both ways must agree.
    big = {(f, t, f % 2) for f in range(1, 400) for t in range(1, 30)}
    small = {(f, 7, f % 2) for f in range(1, 400, 3)} | {(5, 1000, 0), (10**15, 1, 1)}
    a_items, b_items = (small, big) if small_first else (big, small)
    a, b = TripleSet.from_triples(tmp_path, a_items), TripleSet.from_triples(tmp_path, b_items)
    assert list(union(a, b, tmp_path)) == sorted(a_items | b_items)
    assert list(intersection(a, b, tmp_path)) == sorted(a_items & b_items)
    assert list(difference(a, b, tmp_path)) == sorted(a_items - b_items)
    both = diff(a, b, tmp_path)
    assert (list(both.only_a), list(both.only_b)) == (sorted(a_items - b_items), sorted(b_items - a_items))
    assert both.common == len(a_items & b_items)
