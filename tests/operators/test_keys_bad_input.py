"""Bad business keys and id properties through the operator: each fails before any lookup or write,
naming what is wrong and where (issue 13's bad-input paths)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_hubspot_assoc.constants import MAX_PROPERTY_VALUE_CHARS
from airflow_hubspot_assoc.exceptions import HubSpotConfigError, PairInputError
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator

RECORDS = {
    "contacts": [{"id": "11", "properties": {"email": "ann@acme.com"}}],
    "companies": [{"id": "701", "properties": {"external_id": "C-1"}}],
}
EXTERNAL_ID = {"object_type": "companies", "name": "external_id", "has_unique_value": True}


def operator(**kwargs) -> BatchCreateAssociationsOperator:
    options = {
        "task_id": "create",
        "from_object_type": "contacts",
        "to_object_type": "companies",
        "from_id_property": "email",
        "to_id_property": "external_id",
        "association_type_id": 279,
        **kwargs,
    }
    return BatchCreateAssociationsOperator(**options)


def no_lookups_or_writes(hs) -> bool:
    return not [e for e in hs.requests if e.endpoint.startswith("objects") or "create" in e.endpoint]


def write_csv(tmp_path, rows: list[str]) -> str:
    path = tmp_path / "pairs.csv"
    path.write_text("email,erp\n" + "".join(f"{row}\n" for row in rows))
    return str(path)


def write_jsonl(tmp_path, rows: list[dict]) -> str:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def write_parquet(tmp_path, rows: list[dict]) -> str:
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"email": [r["email"] for r in rows], "erp": [r["erp"] for r in rows]}), path)
    return str(path)


LONG = "x" * (MAX_PROPERTY_VALUE_CHARS + 1)
CASES = {
    "empty": (write_csv, ["ann@acme.com,C-1", ",C-1"], r"line 3.*email.*the key is empty"),
    "whitespace": (write_csv, ["ann@acme.com,C-1", "ann@acme.com,   "], r"line 3.*erp.*only whitespace"),
    "too long": (write_csv, [f"ann@acme.com,{LONG}"], r"line 2.*erp.*65,537 characters long"),
    "JSON number": (
        write_jsonl,
        [{"email": "ann@acme.com", "erp": "C-1"}, {"email": "ann@acme.com", "erp": 7}],
        r"line 2.*erp.*int, not a key",
    ),
    "Parquet integers": (
        write_parquet,
        [{"email": "ann@acme.com", "erp": 1}, {"email": "ann@acme.com", "erp": 2}],
        r"pairs\.parquet, field 'erp': column 'erp' has type int64.*must hold strings",
    ),
}


@pytest.mark.hubspot_standin(records=RECORDS, properties=[EXTERNAL_ID])
@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_key_in_the_input_fails_before_any_lookup_naming_line_and_field(case, hubspot_conn, tmp_path):
    write, rows, message = CASES[case]
    task = operator(pairs_path=write(tmp_path, rows), from_id_field="email", to_id_field="erp")
    with pytest.raises(PairInputError, match=message):
        task.execute({})
    assert no_lookups_or_writes(hubspot_conn)


@pytest.mark.hubspot_standin(records=RECORDS, properties=[EXTERNAL_ID])
def test_a_number_as_key_in_an_xcom_list_fails_naming_the_line(hubspot_conn):
    task = operator(pairs=[["ann@acme.com", "C-1"], ["ann@acme.com", 1]])
    with pytest.raises(PairInputError, match=r"pairs, line 2, field 'to_id': 1 is a int, not a key"):
        task.execute({})
    assert no_lookups_or_writes(hubspot_conn)


@pytest.mark.hubspot_standin(records=RECORDS, properties=[EXTERNAL_ID])
def test_a_from_property_that_does_not_exist_fails_naming_the_parameter(hubspot_conn):
    task = operator(pairs=[["x", "C-1"]], from_id_property="erp_contact_id")
    with pytest.raises(HubSpotConfigError, match=r"from_id_property='erp_contact_id'.*has no property"):
        task.execute({})
    assert {e.endpoint for e in hubspot_conn.requests} == {"property"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_id_property": 5}, r"from_id_property must be a property name, got 5"),
        ({"to_id_property": "External ID"}, r"to_id_property='External ID' is not a HubSpot property name"),
        (
            {"from_object_type": "deals", "from_id_property": "domain"},
            r"from_id_property='domain' is only a key of companies, not of deals",
        ),
    ],
)
def test_a_bad_id_property_parameter_fails_before_any_request(kwargs, message, hubspot_conn):
    with pytest.raises(HubSpotConfigError, match=message):
        operator(pairs=[["a@x.com", "C-1"]], **kwargs).execute({})
    assert hubspot_conn.requests == []
