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
