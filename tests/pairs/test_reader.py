"""PairReader as the operator uses it: every input kind, two identical passes, flat memory, fuzzing."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_hubspot_assoc.exceptions import HubSpotConfigError, PairInputError
from airflow_hubspot_assoc.pairs import MAX_ID, InvalidRow, Pair, PairReader
from airflow_hubspot_assoc.pairs.ids import InvalidValueError, normalise_id
from tests.helpers import INPUT_KINDS, assert_well_formed, ids, read_all, write_csv, write_input

PAIRS = [(1, 101), (2, 102), (3, 103), (4, 104), (5, 105)]
EXPECTED_IDS = [(str(f), str(t)) for f, t in PAIRS]


@pytest.mark.parametrize("fmt", INPUT_KINDS)
def test_every_input_kind_yields_the_pairs_and_two_passes_agree(tmp_path, memory_bucket, fmt):
    path = write_input(tmp_path, fmt, PAIRS, memory_bucket)
    reader = PairReader.from_path(path)
    first = list(reader)
    assert ids(first) == EXPECTED_IDS
    assert all(type(row) is Pair for row in first)
    assert list(reader) == first
    assert reader.description == path
    assert reader.files == sorted(reader.files) and len(reader.files) >= 1


def test_files_lists_the_resolved_parts(tmp_path, memory_bucket):
    path = write_input(tmp_path, "sharded", PAIRS, memory_bucket)
    assert PairReader.from_path(path).files == [
        f"{path}/part-000.csv",
        f"{path}/part-001.csv",
        f"{path}/part-002.jsonl",
    ]
    assert PairReader.from_path(Path(path) / "part-000.csv").files == [f"{path}/part-000.csv"]
    assert PairReader.from_pairs([[1, 2]]).files == []


def test_rows_of_shards_carry_their_own_source(tmp_path, memory_bucket):
    path = write_input(tmp_path, "sharded", PAIRS, memory_bucket)
    rows = read_all(path)
    assert [(Path(r.source).name, r.line) for r in rows] == [
        ("part-000.csv", 2),
        ("part-000.csv", 3),
        ("part-002.jsonl", 1),
        ("part-002.jsonl", 2),
        ("part-002.jsonl", 3),
    ]


def test_memory_url_through_an_attached_airflow_store(tmp_path, memory_bucket, monkeypatch):
    import fsspec
    from airflow.sdk.io import store

    # Registering the store the way attach() does, but undone after the test.
    monkeypatch.setitem(
        store._STORE_CACHE, "memory", store.ObjectStore("memory", None, fs=fsspec.filesystem("memory"))
    )
    path = write_input(tmp_path, "memory-dir", PAIRS, memory_bucket)
    assert ids(read_all(path)) == EXPECTED_IDS


def test_a_bad_row_in_a_shard_names_the_shard(tmp_path):
    write_csv(tmp_path / "a.csv", PAIRS)
    (tmp_path / "b.csv").write_text("from_id,to_id\n1,2\n3,x\n")
    (bad,) = [r for r in read_all(tmp_path / "*.csv") if isinstance(r, InvalidRow)]
    assert (bad.source, bad.line, bad.field) == (str(tmp_path / "b.csv"), 3, "to_id")


def test_shards_without_any_rows_are_an_error(tmp_path):
    write_csv(tmp_path / "a.csv", [])
    (tmp_path / "b.jsonl").write_text("")
    with pytest.raises(PairInputError, match="no pairs in any of the 2 files") as excinfo:
        read_all(tmp_path)
    assert excinfo.value.source == str(tmp_path)


def test_a_header_only_shard_still_needs_the_id_columns(tmp_path):
    write_csv(tmp_path / "a.csv", PAIRS)
    write_csv(tmp_path / "b.csv", [], header=("x", "y"))
    with pytest.raises(PairInputError) as excinfo:
        read_all(tmp_path)
    assert (excinfo.value.source, excinfo.value.field) == (str(tmp_path / "b.csv"), "from_id")


def test_largest_id_accepted_and_one_more_rejected_in_every_format(tmp_path):
    big, bigger = MAX_ID, MAX_ID + 1
    csv_path = tmp_path / "in.csv"
    csv_path.write_text(f"from_id,to_id\n{big},1\n{bigger},1\n")
    jsonl_path = tmp_path / "in.jsonl"
    jsonl_path.write_text(f"[{big}, 1]\n[{bigger}, 1]\n")
    for path in (csv_path, jsonl_path):
        good, bad = read_all(path)
        assert good.from_id == str(big)
        assert isinstance(bad, InvalidRow) and bad.field == "from_id" and "2**63-1" in bad.reason
    good, bad = PairReader.from_pairs([[big, 1], [str(bigger), 1]])
    assert good.from_id == str(big) and isinstance(bad, InvalidRow)


# -- XCom lists --------------------------------------------------------------------------------


def test_from_pairs_shapes_and_item_numbers():
    reader = PairReader.from_pairs([[1, 2], ["03", "4"]])
    assert list(reader) == [Pair("1", "2", 1, "pairs"), Pair("3", "4", 2, "pairs")]
    assert reader.description == "pairs (XCom, 2 items)"
    dicts = PairReader.from_pairs(
        [{"a": 1, "b": 2, "association_label": "x"}], from_id_field="a", to_id_field="b"
    )
    assert list(dicts) == [Pair("1", "2", 1, "pairs", label="x")]
    assert dicts.description == "pairs (XCom, 1 item)"
    hubspot = PairReader.from_pairs([{"from": {"id": 1}, "to": {"id": 2}}])
    assert list(hubspot) == [Pair("1", "2", 1, "pairs")]


def test_from_pairs_copies_a_one_shot_iterable_so_it_can_be_read_twice():
    reader = PairReader.from_pairs([i, i + 1] for i in range(1, 4))
    assert list(reader) == list(reader) and len(list(reader)) == 3


def test_from_pairs_empty_list_yields_nothing():
    # Unlike an empty file, an empty XCom list is a normal "nothing to do today".
    assert list(PairReader.from_pairs([])) == []


def test_from_pairs_mixed_shapes_raise():
    with pytest.raises(PairInputError, match="mixed item shapes") as excinfo:
        list(PairReader.from_pairs([[1, 2], {"from_id": 1, "to_id": 2}]))
    assert (excinfo.value.source, excinfo.value.line) == ("pairs", 2)


@pytest.mark.parametrize("pairs", ["[[1, 2]]", b"12", {"from_id": 1}, 5, None])
def test_from_pairs_refuses_non_lists(pairs):
    with pytest.raises(PairInputError, match="pairs must be a list"):
        PairReader.from_pairs(pairs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"from_id_field": "x", "to_id_field": "x"}, "must differ"), ({"from_id_field": ""}, "non-empty")],
)
def test_bad_field_names_are_config_errors(kwargs, message):
    with pytest.raises(HubSpotConfigError, match=message):
        PairReader.from_pairs([], **kwargs)
    with pytest.raises(HubSpotConfigError, match=message):
        PairReader.from_path("x.csv", **kwargs)


def test_from_path_does_no_io_until_used(tmp_path):
    reader = PairReader.from_path(str(tmp_path / "missing.csv"))
    with pytest.raises(PairInputError, match="does not exist"):
        list(reader)


def test_unregistered_scheme_is_an_input_error():
    with pytest.raises(PairInputError) as excinfo:
        list(PairReader.from_path("nosuchscheme://bucket/pairs.csv"))
    assert excinfo.value.source == "nosuchscheme://bucket/pairs.csv"


# -- Memory ------------------------------------------------------------------------------------

_MEMORY_PROBE = textwrap.dedent(
    """
    import resource, sys
    from airflow_hubspot_assoc.pairs import PairReader

    def drain(path):
        count = 0
        for _ in PairReader.from_path(path):
            count += 1
        return count

    # Pairs of (1,000-row warm-up file, 1,000,000-row file): the warm-up settles imports, buffers
    # and caches, so the growth of the peak is what the large file alone costs.
    for small, large in zip(sys.argv[1::2], sys.argv[2::2]):
        assert drain(small) == 1_000
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert drain(large) == 1_000_000
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """
)


def _numbered_csv(count: int) -> str:
    return "from_id,to_id\n" + "".join(f"{10_000_000 + i},{20_000_000 + i}\n" for i in range(count))


@pytest.mark.slow  # writes and reads 1,000,000 rows twice in a fresh interpreter: 13 to 21 s
def test_memory_stays_flat_over_a_million_rows(tmp_path):
    """Reading 1,000,000 rows (CSV and CSV.gz) must not raise peak memory by anything like the input.

    Peak RSS of a fresh interpreter is measured rather than tracemalloc's peak, because tracemalloc
    slows the loop down about fifteen-fold; a reader that kept the rows or the text would add
    hundreds of MiB here (the text alone is 17 MiB).
    """
    paths = []
    for suffix, opener in ((".csv", open), (".csv.gz", gzip.open)):
        for name, count in (("small", 1_000), ("large", 1_000_000)):
            paths.append(tmp_path / f"{name}{suffix}")
            with opener(paths[-1], "wt") as handle:
                handle.write(_numbered_csv(count))
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, *map(str, paths)], capture_output=True, text=True, check=True
    )
    growth_kib = [int(value) for value in result.stdout.split()]
    assert len(growth_kib) == 2
    assert max(growth_kib) < 4 * 1024, f"peak memory grew by {growth_kib} KiB (csv, csv.gz)"


def _traced_peak(path: Path) -> int:
    reader = PairReader.from_path(str(path))
    next(iter(reader))  # imports and first-use caches are not the reader's footprint
    tracemalloc.start()
    try:
        for _ in reader:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_traced_peak_memory_does_not_grow_with_the_input(tmp_path, fmt):
    peaks = []
    for count in (20_000, 60_000):
        rows = [{"from_id": 10_000_000 + i, "to_id": 20_000_000 + i} for i in range(count)]
        path = tmp_path / f"{count}.{fmt}"
        if fmt == "csv":
            write_csv(path, [(r["from_id"], r["to_id"]) for r in rows])
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        elif fmt == "json":
            path.write_text(json.dumps(rows))
        else:
            pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=10_000)
        peaks.append(_traced_peak(path))
    small, large = peaks
    assert large < small * 1.25 + 64 * 1024, f"peak grew from {small} to {large} bytes with 3x the rows"
    assert large < 2 * 1024 * 1024


# -- Properties and fuzzing --------------------------------------------------------------------

_cell = st.one_of(
    st.integers(min_value=-5, max_value=MAX_ID + 5).map(str),
    st.integers(min_value=1, max_value=10**6).map(lambda n: "00" + str(n)),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.sampled_from(['a"b', "x,y", "line\nbreak", "cr\rlf\r\n", " 12 ", ""]),
)


def _oracle(value: str) -> str | None:
    try:
        return normalise_id(value)
    except InvalidValueError:
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_cell, _cell), min_size=1, max_size=12))
def test_csv_rows_and_physical_lines_match_what_the_csv_module_wrote(tmp_path, rows):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["from_id", "to_id"])
    starts = []
    line = 2
    for row in rows:
        record = io.StringIO(newline="")
        csv.writer(record, lineterminator="\r\n").writerow(row)
        starts.append(line)
        line += len(re.findall(r"\r\n|\r|\n", record.getvalue()))
        buffer.write(record.getvalue())
    with tempfile.NamedTemporaryFile("w", suffix=".csv", dir=tmp_path, delete=False, newline="") as handle:
        handle.write(buffer.getvalue())
    result = read_all(handle.name)
    assert [r.line for r in result] == starts
    for (raw_from, raw_to), got in zip(rows, result, strict=True):
        expected = (_oracle(raw_from), _oracle(raw_to))
        if None in expected:
            assert type(got) is InvalidRow and (got.from_id, got.to_id) == (raw_from, raw_to)
        else:
            assert type(got) is Pair and (got.from_id, got.to_id) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.tuples(st.just("int64"), st.lists(st.none() | st.integers(-3, MAX_ID), min_size=1, max_size=20)),
        st.tuples(
            st.just("uint64"), st.lists(st.none() | st.integers(0, 2**64 - 1), min_size=1, max_size=20)
        ),
    )
)
def test_parquet_fast_and_slow_paths_agree(tmp_path, typed_values):
    kind, values = typed_values
    column = pa.array(values, getattr(pa, kind)())
    with tempfile.NamedTemporaryFile(suffix=".parquet", dir=tmp_path, delete=False) as handle:
        pq.write_table(
            pa.table({"from_id": column, "to_id": pa.array([1] * len(values), pa.int64())}), handle.name
        )
    result = read_all(handle.name)
    assert [r.line for r in result] == list(range(2, len(values) + 2))
    for value, got in zip(values, result, strict=True):
        if value is not None and 1 <= value <= MAX_ID:
            assert type(got) is Pair and got.from_id == str(value)
        else:
            assert type(got) is InvalidRow and got.field == "from_id"


_SUFFIXES = [".csv", ".jsonl", ".json", ".csv.gz", ".json.gz", ".parquet"]
_seeds = [
    b"from_id,to_id\n1,2\n",
    b'[{"from_id": 1, "to_id": 2}]',
    b'{"from_id": 1, "to_id": 2}\n',
    b'[{"from": {"id": "1"}, "to": {"id": "2"}}]',
    b'"\n',
    b"\xef\xbb\xbf",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(_SUFFIXES),
    st.one_of(
        st.binary(max_size=200),
        st.tuples(st.sampled_from(_seeds), st.binary(max_size=60), st.sampled_from(_seeds)).map(b"".join),
    ),
    st.booleans(),
)
def test_fuzz_arbitrary_bytes_yield_only_pairs_invalid_rows_or_input_errors(
    tmp_path, suffix, content, compress
):
    if compress and suffix.endswith(".gz"):
        content = gzip.compress(content)
    with tempfile.NamedTemporaryFile(suffix=suffix, dir=tmp_path, delete=False) as handle:
        handle.write(content)
    reader = PairReader.from_path(handle.name)
    try:
        first = list(reader)
    except PairInputError as err:
        assert err.source == handle.name
        return
    assert first
    for row in first:
        assert_well_formed(row, handle.name)
    lines = [row.line for row in first if row.line is not None]
    assert lines == sorted(lines), "rows come in the order of the input"
    assert list(reader) == first
