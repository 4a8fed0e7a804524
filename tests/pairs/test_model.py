from __future__ import annotations

from airflow_hubspot_assoc.pairs import InvalidRow, Pair


def test_pair_defaults_leave_every_override_unset():
    pair = Pair("1", "2", 5, "in.csv")
    assert (pair.type_id, pair.category, pair.label, pair.types) == (None, None, None, None)


def test_invalid_row_converts_to_an_error_naming_source_line_and_field():
    row = InvalidRow("s3://b/in.csv", 7, "to_id", "'x' is not a record id", "1", "x")
    err = row.to_error()
    assert (err.source, err.line, err.field, err.reason) == ("s3://b/in.csv", 7, "to_id", row.reason)
    assert str(err) == "s3://b/in.csv, line 7, field 'to_id': 'x' is not a record id"
