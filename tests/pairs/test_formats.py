"""Each reader against real files: shapes, line numbers, and the message of every bad input."""

from __future__ import annotations

import gzip
import io
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs import InvalidRow, Pair, PairReader
from airflow_hubspot_assoc.pairs.ids import MAX_ID
from tests.helpers import ids, read_all, write_csv


def only_error(path, **kwargs):
    with pytest.raises(PairInputError) as excinfo:
        read_all(path, **kwargs)
    return excinfo.value


def assert_names(err, path, line=None, field=None):
    """The message must let a person find the problem: file, line and field."""
    text = str(err)
    assert str(path) in text and err.source == str(path)
    if line is not None:
        assert err.line == line and f"line {line}" in text
    if field is not None:
        assert err.field == field and repr(field) in text


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_rows_and_lines(tmp_path):
    path = write_csv(tmp_path / "in.csv", [(1, 2), ("007", "0008"), (MAX_ID, 3)])
    rows = read_all(path)
    assert rows == [
        Pair("1", "2", 2, str(path)),
        Pair("7", "8", 3, str(path)),
        Pair(str(MAX_ID), "3", 4, str(path)),
    ]
    assert rows[0].source is rows[2].source  # one shared string, not a copy per row


def test_csv_bom_crlf_blank_lines_and_extra_columns(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes("\ufeffname, from_id ,to_id\r\nAda,1,2\r\n\r\nBob,3,4\r\n".encode())
    rows = read_all(path)
    assert [(r.from_id, r.to_id, r.line) for r in rows] == [("1", "2", 2), ("3", "4", 4)]


def test_csv_quoted_newlines_count_as_physical_lines(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('note,from_id,to_id\n"two\nlines",1,2\n"three\r\nline\rs",3,4\nx,5,bad\n')
    rows = read_all(path)
    assert [(r.from_id, r.line) for r in rows] == [("1", 2), ("3", 4), ("5", 7)]
    assert isinstance(rows[2], InvalidRow) and rows[2].field == "to_id"


def test_csv_custom_id_columns_and_per_row_overrides(tmp_path):
    path = write_csv(
        tmp_path / "in.csv",
        [(1, 2, "279", "HUBSPOT_DEFINED", ""), (3, 4, "", "", "Billing contact"), (5, 6, "x", "", "")],
        header=("contact", "company", "association_type_id", "association_category", "association_label"),
    )
    rows = read_all(path, from_id_field="contact", to_id_field="company")
    assert rows[0] == Pair("1", "2", 2, str(path), 279, "HUBSPOT_DEFINED", None)
    assert rows[1] == Pair("3", "4", 3, str(path), None, None, "Billing contact")
    assert isinstance(rows[2], InvalidRow) and (rows[2].line, rows[2].field) == (4, "association_type_id")


@pytest.mark.parametrize(
    ("body", "line", "field", "reason"),
    [
        ("3,abc\n", 3, "to_id", "not a record id"),
        ("0,5\n", 3, "from_id", "zero"),
        ("-4,5\n", 3, "from_id", "negative"),
        (f"{MAX_ID + 1},5\n", 3, "from_id", "larger than the largest"),
        ("1," + "9" * 40 + "\n", 3, "to_id", "larger than the largest"),
        ("1," + "1" * 70 + "\n", 3, "to_id", "too long"),
        (",7\n", 3, "from_id", "empty"),
        ("1.0,7\n", 3, "from_id", "not a record id"),
        ("1,2,3\n", 3, None, "expected 2 columns"),
        ("5\n", 3, None, "expected 2 columns"),
        ('1,"2\n3,4\n', 3, None, "unbalanced quote"),
        ('1,"2"x\n', 3, None, "malformed CSV"),
    ],
)
def test_csv_bad_rows_name_line_and_field(tmp_path, body, line, field, reason):
    path = tmp_path / "bad.csv"
    path.write_text("from_id,to_id\n1,2\n" + body)
    rows = read_all(path)
    bad = [r for r in rows if isinstance(r, InvalidRow)]
    assert len(bad) == 1, rows
    (row,) = bad
    assert (row.line, row.field) == (line, field) and reason in row.reason
    assert_names(row.to_error(), path, line, field)


def test_csv_reading_goes_on_after_a_malformed_row(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('from_id,to_id\n1,"2"x\n3,4\n')
    rows = read_all(path)
    assert isinstance(rows[0], InvalidRow) and rows[1] == Pair("3", "4", 3, str(path))


def test_csv_bad_row_near_the_end_of_a_large_file(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("from_id,to_id\n" + "".join(f"{i},{i}\n" for i in range(1, 50_001)) + "7,x\n")
    bad = [r for r in read_all(path) if isinstance(r, InvalidRow)]
    assert [(r.line, r.field) for r in bad] == [(50_002, "to_id")]


@pytest.mark.parametrize(
    ("content", "line", "field", "message"),
    [
        (b"", None, None, "the file is empty"),
        (b"\n\n", None, None, "the file is empty"),
        (b"from_id,to_id\n", None, None, "header but no data rows"),
        (b"from_id,to_id\n\n\n", None, None, "header but no data rows"),
        (b"contact,to_id\n1,2\n", 1, "from_id", "no column 'from_id'"),
        (b"from_id,company\n1,2\n", 1, "to_id", "no column 'to_id'"),
        (b"from_id,to_id,from_id\n1,2,3\n", 1, "from_id", "2 times"),
        (b"from_id,to_id\n1,2\n3,\xff4\n", 3, None, "not UTF-8"),
        (b"from_id,to_id\r\n1,2\r\n3,4\r5,6\r\n7,8\xe9\n", 5, None, "not UTF-8"),
        (b'from_id,to_id\n"1\n2",3\n\xc3', 4, None, "not UTF-8"),
    ],
)
def test_csv_file_level_errors(tmp_path, content, line, field, message):
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    err = only_error(path)
    assert message in str(err)
    assert_names(err, path, line, field)


def test_csv_missing_column_names_the_parameter(tmp_path):
    path = write_csv(tmp_path / "in.csv", [(1, 2)], header=("a", "b"))
    err = only_error(path, from_id_field="contact_id", to_id_field="b")
    assert "from_id_field='contact_id'" in str(err) and "'a'" in str(err)


def test_bad_utf8_far_into_a_file_is_located(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"from_id,to_id\n" + b"1,2\n" * 100_000 + b"3,\x80\n")
    assert only_error(path).line == 100_002


def test_csv_gz(tmp_path):
    path = tmp_path / "in.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        handle.write("\ufefffrom_id,to_id\n1,2\n3,x\n")
    rows = read_all(path)
    assert rows[0] == Pair("1", "2", 2, str(path)) and (rows[1].line, rows[1].field) == (3, "to_id")


@pytest.mark.parametrize(
    "content",
    [b"not gzip at all", gzip.compress(b"from_id,to_id\n1,2\n" * 50)[:-20]],
    ids=["not-gzip", "truncated-gzip"],  # the gzip header holds the time: ids from it would change
)
def test_broken_gzip_is_an_input_error(tmp_path, content):
    path = tmp_path / "in.csv.gz"
    path.write_bytes(content)
    err = only_error(path)
    assert "gzip" in str(err) and err.source == str(path)


# -- JSON Lines --------------------------------------------------------------------------------


def test_jsonl_objects_lists_and_blank_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"from_id": 1, "to_id": "02"}\n\n  {"from_id": "3", "to_id": 4, "association_type_id": 5}\n'
    )
    assert read_all(path) == [Pair("1", "2", 1, str(path)), Pair("3", "4", 3, str(path), 5)]
    path = tmp_path / "in.ndjson"
    path.write_text("[1, 2]\n[3, 4]\n")
    assert ids(read_all(path)) == [("1", "2"), ("3", "4")]


@pytest.mark.parametrize(
    ("line_text", "field", "reason"),
    [
        ("{bad json", None, "not valid JSON"),
        ('{"from_id": 1, "to_id": 2} extra', None, "extra data"),
        ('{"from_id": 1.5, "to_id": 2}', "from_id", "floating-point"),
        ('{"from_id": true, "to_id": 2}', "from_id", "boolean"),
        ('{"from_id": 1}', "to_id", "missing"),
        ('{"from_id": 1, "to_id": 9223372036854775808}', "to_id", "larger than the largest"),
        ('"1,2"', None, "expected an object"),
        ("[" * 100_000, None, "not valid JSON"),
    ],
)
def test_jsonl_bad_lines(tmp_path, line_text, field, reason):
    path = tmp_path / "in.jsonl"
    path.write_text('{"from_id": 1, "to_id": 2}\n' + line_text + "\n")
    rows = read_all(path)
    assert rows[0] == Pair("1", "2", 1, str(path))
    assert isinstance(rows[1], InvalidRow) and (rows[1].line, rows[1].field) == (2, field)
    assert reason in rows[1].reason
    assert_names(rows[1].to_error(), path, 2, field)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("", None, "the file is empty"),
        ("\n \n", None, "no JSON lines"),
        ('[1, 2]\n{"from_id": 1, "to_id": 2}\n', 2, "mixed item shapes"),
    ],
)
def test_jsonl_file_level_errors(tmp_path, content, line, message):
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    err = only_error(path)
    assert message in str(err)
    assert_names(err, path, line)


# -- JSON arrays -------------------------------------------------------------------------------


def test_json_array_compact_and_pretty_printed(tmp_path):
    items = [{"from_id": i, "to_id": str(i + 1)} for i in range(1, 4)]
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(items))
    assert [(r.from_id, r.line) for r in read_all(compact)] == [("1", 1), ("2", 1), ("3", 1)]
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(items, indent=2))
    # Each object starts on its "{" line: 2, 6, 10.
    assert [(r.from_id, r.line) for r in read_all(pretty)] == [("1", 2), ("2", 6), ("3", 10)]


def test_json_array_streams_across_chunks(tmp_path, monkeypatch):
    from airflow_hubspot_assoc.pairs import json_array, text

    # Every item and many numbers straddle a chunk end (the scanner's reads and the decoder's alike).
    for module in (json_array, text):
        monkeypatch.setattr(module, "TEXT_CHUNK", 7)
    path = tmp_path / "in.json"
    path.write_text("[\n" + ",\n".join(f"[{10**12 + i}, {i + 1}]" for i in range(200)) + "\n]\n")
    rows = read_all(path)
    assert [(r.from_id, r.to_id, r.line) for r in rows] == [
        (str(10**12 + i), str(i + 1), i + 2) for i in range(200)
    ]


def test_json_hubspot_inputs(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(
        json.dumps(
            [
                {
                    "from": {"id": "1"},
                    "to": {"id": "2"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                },
                {"from": {"id": "1"}, "to": {"id": "0"}},
            ]
        )
    )
    rows = read_all(path)
    assert rows[0] == Pair("1", "2", 1, str(path), types=(("HUBSPOT_DEFINED", 1),))
    assert isinstance(rows[1], InvalidRow) and rows[1].field == "to.id" and "(array item 2)" in rows[1].reason


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("", None, "the file is empty"),
        ("  \n", None, "the file is empty"),
        ("[]", None, "the JSON array is empty"),
        ('{"from_id": 1, "to_id": 2}', 1, "starts with an object"),
        ('\n\n"text"', 3, "starts with a string"),
        ("42", 1, "starts with a number"),
        ('[\n[1, 2],\n{"from_id": 1, "to_id": 2}\n]', 3, "mixed item shapes"),
        ("[\n[1, 2],\n[3, 4\n", 4, "in the value that starts on line 3"),
        ("[\n[1, 2],\n[3, 4]\n", 4, "not closed"),
        ("[\n[1, 2],\n]", 3, "malformed JSON"),
        ("[[1, 2] [3, 4]]", 1, "expected ',' or ']'"),
        ("[[1, 2]] [3, 4]", 1, "extra data"),
        ("[\n" + "[" * 100_000, 2, "nested too deeply"),
        ('[\n"' + "x" * 2_000_000, 2, "larger than"),
    ],
)
def test_json_file_level_errors(tmp_path, content, line, message):
    path = tmp_path / "in.json"
    path.write_text(content)
    err = only_error(path)
    assert message in str(err)
    assert_names(err, path, line)


def test_json_bad_utf8_is_located(tmp_path):
    path = tmp_path / "in.json"
    path.write_bytes(b'[\n[1, 2],\n["\xff", 2]\n]')
    assert_names(only_error(path), path, 3)


# -- Parquet -----------------------------------------------------------------------------------


def _parquet(path, columns, schema=None, **kwargs):
    pq.write_table(pa.table(columns, schema=schema), path, **kwargs)
    return path


def test_parquet_integer_and_string_ids(tmp_path):
    path = _parquet(tmp_path / "in.parquet", {"from_id": [1, 2, MAX_ID], "to_id": ["3", "004", "5"]})
    assert read_all(path) == [
        Pair("1", "3", 2, str(path)),
        Pair("2", "4", 3, str(path)),
        Pair(str(MAX_ID), "5", 4, str(path)),
    ]


def test_parquet_lines_continue_across_batches_and_row_groups(tmp_path, monkeypatch):
    from airflow_hubspot_assoc.pairs import parquet

    monkeypatch.setattr(parquet, "PARQUET_BATCH", 3)
    values = list(range(1, 11))
    values[7] = 0
    path = _parquet(
        tmp_path / "in.parquet", {"from_id": values, "to_id": list(range(1, 11))}, row_group_size=4
    )
    rows = read_all(path)
    assert [r.line for r in rows] == list(range(2, 12))
    assert [(r.line, r.field) for r in rows if isinstance(r, InvalidRow)] == [(9, "from_id")]


def test_parquet_bad_values_and_overrides(tmp_path):
    path = _parquet(
        tmp_path / "in.parquet",
        {
            "from_id": pa.array([1, None, -3, 4], pa.int64()),
            "to_id": pa.array(["1", "2", "3", "x"]).dictionary_encode(),
            "association_type_id": pa.array([279, None, None, None], pa.int32()),
            "association_label": ["", None, None, "Billing"],
        },
    )
    rows = read_all(path)
    assert rows[0] == Pair("1", "1", 2, str(path), 279)
    assert [(r.line, r.field) for r in rows[1:]] == [(3, "from_id"), (4, "from_id"), (5, "to_id")]
    assert "missing" in rows[1].reason and "not positive" in rows[2].reason


def test_parquet_uint64_above_the_maximum(tmp_path):
    path = _parquet(tmp_path / "in.parquet", {"from_id": pa.array([1, 2**63], pa.uint64()), "to_id": [1, 2]})
    rows = read_all(path)
    assert isinstance(rows[0], Pair) and isinstance(rows[1], InvalidRow) and rows[1].line == 3


@pytest.mark.parametrize(
    ("columns", "field", "message"),
    [
        ({"from_id": [1.0], "to_id": [2]}, "from_id", "floats lose precision"),
        ({"from_id": [1], "to_id": [True]}, "to_id", "type bool"),
        ({"from_id": [1], "to_id": [2], "association_label": [3]}, "association_label", "expected text"),
    ],
)
def test_parquet_column_types_are_checked_up_front(tmp_path, columns, field, message):
    path = _parquet(tmp_path / "in.parquet", columns)
    err = only_error(path)
    assert message in str(err)
    assert_names(err, path, None, field)


def test_parquet_file_level_errors(tmp_path):
    missing = _parquet(tmp_path / "missing.parquet", {"contact": [1], "to_id": [2]})
    assert_names(only_error(missing), missing, 1, "from_id")
    empty = _parquet(
        tmp_path / "empty.parquet", {"from_id": pa.array([], pa.int64()), "to_id": pa.array([], pa.int64())}
    )
    assert "no rows" in str(only_error(empty))
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"from_id,to_id\n1,2\n")
    assert "not a readable Parquet file" in str(only_error(garbage))


def test_parquet_gz_is_spooled_to_disk(tmp_path):
    plain = _parquet(tmp_path / "in.parquet", {"from_id": [1, 2], "to_id": [3, 4]})
    packed = tmp_path / "in.parquet.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert ids(read_all(packed)) == [("1", "3"), ("2", "4")]


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path, monkeypatch):
    path = _parquet(tmp_path / "in.parquet", {"from_id": [1], "to_id": [2]})
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    err = only_error(path)
    assert "pip install 'airflow-hubspot-assoc[parquet]'" in str(err) and err.source == str(path)


def test_non_utf8_is_reported_for_gzip_too(tmp_path):
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(gzip.compress(b'[1, 2]\n["\xfe", 3]\n'))
    assert_names(only_error(path), path, 2)


def test_every_iteration_reopens_the_file(tmp_path):
    path = write_csv(tmp_path / "in.csv", [(1, 2)])
    reader = PairReader.from_path(str(path))
    assert list(reader) == list(reader) == [Pair("1", "2", 2, str(path))]


# -- Line splitting ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab,"\r\n', max_size=60), st.integers(min_value=1, max_value=9))
def test_physical_lines_match_text_file_iteration_at_any_chunk_size(text, chunk):
    from airflow_hubspot_assoc.pairs import text as text_module

    original = text_module.TEXT_CHUNK
    text_module.TEXT_CHUNK = chunk  # a fixture would be reset only once per test, not per example
    try:
        lines = list(text_module.physical_lines(io.StringIO(text, newline=""), "src"))
    finally:
        text_module.TEXT_CHUNK = original
    assert lines == list(io.StringIO(text, newline=""))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_file_without_line_breaks_is_not_read_whole(tmp_path, monkeypatch, suffix):
    from airflow_hubspot_assoc.pairs import text

    monkeypatch.setattr(text, "MAX_LINE_CHARS", 1000)
    monkeypatch.setattr(text, "TEXT_CHUNK", 100)
    path = tmp_path / f"in{suffix}"
    path.write_text("from_id,to_id\n" + "1" * 5000)
    err = only_error(path)
    assert "longer than 1000 characters" in str(err) and err.source == str(path)
