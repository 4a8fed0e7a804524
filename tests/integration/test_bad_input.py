"""Bad input fails clearly and costs nothing: a message naming the file, line and field (or the
parameter), and not one write request sent to HubSpot.

Why: a load of millions of pairs that writes half of them before tripping over row 600,000 leaves a
portal half-changed and a data engineer guessing. The operator validates everything before the first
write; these tests feed it every kind of broken input we know of and check both halves of the promise
against the HubSpot stand-in's request log. A UTF-8 byte-order mark is not an error (Excel writes one)
and must be accepted.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from airflow_hubspot_assoc.exceptions import HubSpotConfigError, PairInputError, UnknownLabelError
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.testing import HubSpotStandIn
from tests.integration.reliability_support import WRITE_ENDPOINTS

LONG = "9" * 500


def operator(**kwargs: Any) -> BatchCreateAssociationsOperator:
    """The operator with contacts -> companies unless told otherwise."""
    arguments: dict[str, Any] = {
        "task_id": "create",
        "from_object_type": "contacts",
        "to_object_type": "companies",
    }
    arguments.update(kwargs)
    return BatchCreateAssociationsOperator(**arguments)


def writes(hs: HubSpotStandIn) -> list[Any]:
    """Write requests the stand-in received (any answer)."""
    return [r for r in hs.requests if r.endpoint in WRITE_ENDPOINTS]


# (file name, content, line, field): line/field None when the problem has none (a whole-file problem,
# or a row whose shape is wrong rather than one of its values).
FILE_CASES = [
    ("unbalanced-quote.csv", b'from_id,to_id\n1,2\n"3,4\n5,6\n', 3, None),
    ("unbalanced-quote-at-end.csv", b'from_id,to_id\n1,2\n3,"4\n', 3, None),
    ("too-many-columns.csv", b"from_id,to_id\n1,2\n3,4,5\n", 3, None),
    ("too-few-columns.csv", b"from_id,to_id\n1,2\n3\n", 3, None),
    ("not-utf8.csv", b"from_id,to_id\n1,2\n3,4\n5,\xff6\n", 4, None),
    ("not-utf8-latin1-name.csv", b"from_id,to_id,name\n1,2,Jos\xe9\n", 2, None),
    ("not-utf8.csv.gz", gzip.compress(b"from_id,to_id\n1,2\n\xfe,6\n"), 3, None),
    ("not-numeric.csv", b"from_id,to_id\n1,2\n3,x7\n", 3, "to_id"),
    ("hex.csv", b"from_id,to_id\n1,2\n0x1F,7\n", 3, "from_id"),
    ("decimal-point.csv", b"from_id,to_id\n1,2\n3,7.0\n", 3, "to_id"),
    ("zero.csv", b"from_id,to_id\n1,2\n0,7\n", 3, "from_id"),
    ("zero-padded-zero.csv", b"from_id,to_id\n1,2\n3,000\n", 3, "to_id"),
    ("negative.csv", b"from_id,to_id\n1,2\n-3,7\n", 3, "from_id"),
    ("plus-sign.csv", b"from_id,to_id\n1,2\n+3,7\n", 3, "from_id"),
    ("absurdly-long.csv", f"from_id,to_id\n1,2\n3,{LONG}\n".encode(), 3, "to_id"),
    ("above-2-63.csv", b"from_id,to_id\n1,2\n9223372036854775808,7\n", 3, "from_id"),
    ("empty-id.csv", b"from_id,to_id\n1,2\n,7\n", 3, "from_id"),
    ("unicode-digits.csv", "from_id,to_id\n1,2\n\u0663,7\n".encode(), 3, "from_id"),
    ("empty.csv", b"", None, None),
    ("header-only.csv", b"from_id,to_id\n", None, None),
    ("header-only-crlf.csv", b"from_id,to_id\r\n\r\n", None, None),
    ("missing-to-column.csv", b"from_id,other\n1,2\n", 1, "to_id"),
    ("missing-both-columns.csv", b"a,b\n1,2\n", 1, "from_id"),
    ("column-twice.csv", b"from_id,to_id,to_id\n1,2,3\n", 1, "to_id"),
    ("bad-category.csv", b"from_id,to_id,association_category\n1,2,NOPE\n", 2, "association_category"),
    ("bad-type-id.csv", b"from_id,to_id,association_type_id\n1,2,-1\n", 2, "association_type_id"),
    ("empty.jsonl", b"", None, None),
    ("blank-lines.jsonl", b"\n\n  \n", None, None),
    ("broken-line.jsonl", b'{"from_id": 1, "to_id": 2}\n{"from_id": 3,\n', 2, None),
    ("float-id.jsonl", b'{"from_id": 1, "to_id": 2.0}\n', 1, "to_id"),
    ("bool-id.jsonl", b'{"from_id": true, "to_id": 2}\n', 1, "from_id"),
    ("missing-key.jsonl", b'{"from_id": 1, "to_id": 2}\n{"from_id": 3}\n', 2, "to_id"),
    ("mixed-shapes.jsonl", b'[1, 2]\n{"from_id": 3, "to_id": 4}\n', 2, None),
    ("hubspot-shape-bad-id.jsonl", b'{"from": {"id": "1"}, "to": {"id": "x"}}\n', 1, "to.id"),
    ("not-a-list.json", b'{"from_id": 1, "to_id": 2}', 1, None),
    ("a-string.json", b'"1,2"', 1, None),
    ("a-number.json", b"12", 1, None),
    ("empty-array.json", b"[]", None, None),
    ("empty.json", b"", None, None),
    ("mixed-shapes.json", b'[[1, 2],\n {"from_id": 3, "to_id": 4}]', 2, None),
    ("truncated.json", b"[[1, 2],\n [3, 4],\n [5", 3, None),
    ("list-of-three.json", b"[[1, 2], [3, 4, 5]]", 1, None),
]


@pytest.mark.parametrize(
    ("name", "content", "line", "field"), FILE_CASES, ids=[case[0] for case in FILE_CASES]
)
def test_bad_file_names_file_line_and_field_and_sends_no_write(
    hubspot_conn, tmp_path, name, content, line, field
):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PairInputError) as caught:
        operator(pairs_path=str(path)).execute({})
    error = caught.value
    message = str(error)
    assert str(path) in message, message
    assert (error.line, error.field) == (line, field), message
    if line is not None:
        assert f"line {line}" in message, message
    if field is not None:
        assert repr(field) in message, message
    assert writes(hubspot_conn) == []
    assert list(hubspot_conn.requests) == []  # not even a read: the input is checked first


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom.csv", b"\xef\xbb\xbffrom_id,to_id\r\n1,2\r\n3,4\r\n"),
        ("bom.jsonl", b'\xef\xbb\xbf{"from_id": 1, "to_id": 2}\n{"from_id": 3, "to_id": 4}\n'),
        ("bom.json", b'\xef\xbb\xbf[{"from_id": 1, "to_id": 2}, {"from_id": 3, "to_id": 4}]'),
        ("bom.csv.gz", gzip.compress(b"\xef\xbb\xbffrom_id,to_id\n1,2\n3,4\n")),
    ],
)
def test_utf8_byte_order_mark_is_accepted(hubspot_conn, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    record = operator(pairs_path=str(path), association_type_id=279).execute({})
    assert (record["total"], record["created"], record["invalid"]) == (2, 2, 0)
    stored = {(f, t) for f, t, _, _ in hubspot_conn.associations("contacts", "companies")}
    assert stored == {("1", "2"), ("3", "4")}


def test_bad_row_deep_in_a_large_file_still_means_zero_writes(hubspot_conn, tmp_path):
    path = tmp_path / "large.csv"
    rows = [f"{i},{i + 1}" for i in range(1, 50_001)]
    rows[41_999] = "42000,4200x"
    path.write_text("from_id,to_id\n" + "\n".join(rows) + "\n")
    with pytest.raises(PairInputError, match=r"line 42001, field 'to_id'"):
        operator(pairs_path=str(path)).execute({})
    assert writes(hubspot_conn) == []


def test_a_bad_shard_among_good_ones_names_that_shard(hubspot_conn, tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "part-000.csv").write_text("from_id,to_id\n1,2\n")
    (export / "part-001.csv").write_text("from_id,to_id\n3,4\n5,-6\n")
    with pytest.raises(PairInputError) as caught:
        operator(pairs_path=str(export)).execute({})
    assert str(export / "part-001.csv") in str(caught.value) and "line 3" in str(caught.value)
    assert writes(hubspot_conn) == []


@pytest.mark.parametrize(
    ("pairs", "line", "field"),
    [
        ([[1, 2], {"from_id": 3, "to_id": 4}], 2, None),
        ([{"from_id": 3, "to_id": 4}, {"from": {"id": "1"}, "to": {"id": "2"}}], 2, None),
        ([[1, 2], [3, "abc"]], 2, "to_id"),
        ([[1, 2], [0, 3]], 2, "from_id"),
        ([[1, 2], [3]], 2, None),
        ([[1, 2], 7], 2, None),
        ({"from_id": 1, "to_id": 2}, None, None),
        ("[[1, 2]]", None, None),
    ],
    ids=["list-then-object", "fields-then-hubspot", "non-numeric", "zero", "short", "scalar", "dict", "str"],
)
def test_bad_xcom_pairs_name_item_and_field_and_send_no_write(hubspot_conn, pairs, line, field):
    with pytest.raises(PairInputError) as caught:
        operator(pairs=pairs).execute({})
    assert (caught.value.line, caught.value.field) == (line, field), str(caught.value)
    assert str(caught.value).startswith("pairs"), str(caught.value)
    assert writes(hubspot_conn) == []


@pytest.mark.parametrize("side", ["from_object_type", "to_object_type"])
@pytest.mark.parametrize(
    "object_type",
    ["contacts/../deals", "..", "contacts?archived=true", "a/b", "%2e%2e", "con tacts", "", "x" * 101],
)
def test_unsafe_object_type_is_refused_naming_the_parameter_before_any_request(
    hubspot_conn, side, object_type
):
    with pytest.raises(HubSpotConfigError) as caught:
        operator(pairs=[[1, 2]], **{side: object_type}).execute({})
    assert side in str(caught.value), f"the message does not name {side}: {caught.value}"
    assert list(hubspot_conn.requests) == []


@pytest.mark.parametrize("side", ["from_object_type", "to_object_type"])
def test_unknown_object_type_fails_naming_the_parameter_before_any_write(hubspot_conn, side):
    """An object type HubSpot does not know ("widgets") would fail every batch: find out first."""
    with pytest.raises(HubSpotConfigError) as caught:
        operator(
            pairs=[[i, i + 1] for i in range(1, 301)], association_type_id=279, **{side: "widgets"}
        ).execute({})
    assert side in str(caught.value) and "widgets" in str(caught.value), str(caught.value)
    assert writes(hubspot_conn) == [], f"{len(writes(hubspot_conn))} write requests were sent"


def test_unknown_association_type_id_fails_before_any_write(hubspot_conn):
    """A type id the pair of object types does not have would fail every batch, like an unknown label."""
    with pytest.raises(HubSpotConfigError) as caught:
        operator(pairs=[[i, i + 1] for i in range(1, 301)], association_type_id=999_999).execute({})
    assert "association_type_id" in str(caught.value) and "999999" in str(caught.value)
    assert writes(hubspot_conn) == [], f"{len(writes(hubspot_conn))} write requests were sent"


@pytest.mark.parametrize("label", ["Nope", "Billing  contact", "billing-contact"])
def test_unknown_label_lists_the_existing_ones_and_sends_no_write(hubspot_conn, label):
    hubspot_conn.add_label("contacts", "companies", "Billing contact")
    with pytest.raises(UnknownLabelError) as caught:
        operator(pairs=[[1, 2]], association_label=label).execute({})
    assert "Billing contact" in str(caught.value) and "association label" in str(caught.value)
    assert writes(hubspot_conn) == []


def test_unknown_per_row_label_in_a_file_sends_no_write(hubspot_conn, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("from_id,to_id,association_label\n1,2,\n3,4,Typo label\n")
    with pytest.raises(UnknownLabelError, match="Typo label"):
        operator(pairs_path=str(path), association_type_id=279).execute({})
    assert writes(hubspot_conn) == []


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"pairs": [[1, 2]], "pairs_path": "x.csv"}, ["pairs", "pairs_path"]),
        ({}, ["pairs", "pairs_path"]),
        ({"pairs": [[1, 2]], "batch_size": 0}, ["batch_size", "0"]),
        ({"pairs": [[1, 2]], "batch_size": -5}, ["batch_size", "-5"]),
        ({"pairs": [[1, 2]], "batch_size": 2_001}, ["batch_size", "2001"]),
        ({"pairs": [[1, 2]], "batch_size": 10**12}, ["batch_size"]),
        ({"pairs": [[1, 2]], "batch_size": True}, ["batch_size", "True"]),
        ({"pairs": [[1, 2]], "batch_size": 1.5}, ["batch_size", "1.5"]),
        ({"pairs": [[1, 2]], "batch_size": "100"}, ["batch_size", "'100'"]),
        ({"pairs": [[1, 2]], "batch_size": None}, ["batch_size", "None"]),
    ],
    ids=[
        "both",
        "neither",
        "batch-0",
        "batch-negative",
        "batch-2001",
        "batch-huge",
        "batch-bool",
        "batch-float",
        "batch-str",
        "batch-none",
    ],
)
def test_bad_arguments_fail_at_parse_time_naming_the_parameter(kwargs, names):
    with pytest.raises(ValueError) as caught:
        operator(**kwargs)
    for name in names:
        assert name in str(caught.value), str(caught.value)


def test_pairs_path_templated_to_nothing_fails_before_any_request(hubspot_conn):
    op = operator(pairs_path="{{ params.missing }}")
    op.pairs_path = ""  # what rendering an undefined param gives
    with pytest.raises((PairInputError, HubSpotConfigError)) as caught:
        op.execute({})
    assert "pairs_path" in str(caught.value)
    assert list(hubspot_conn.requests) == []


def test_missing_input_file_names_it_and_sends_nothing(hubspot_conn, tmp_path):
    missing: Path = tmp_path / "nope" / "pairs.csv"
    with pytest.raises(PairInputError) as caught:
        operator(pairs_path=str(missing)).execute({})
    assert str(missing) in str(caught.value)
    assert list(hubspot_conn.requests) == []
