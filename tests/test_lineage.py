"""OpenLineage: the datasets the operator reports, and that a missing provider never fails a task.

The OpenLineage provider is not a test dependency (see ``lineage``'s docs): the datasets are computed
without it and tested here; the last tests build the provider's real facets when it is importable.
"""

from __future__ import annotations

import importlib.util
import os

import pendulum
import pytest
from airflow.sdk import DAG, task

from airflow_hubspot_assoc import lineage
from airflow_hubspot_assoc.datasets import associations_dataset, path_dataset, xcom_dataset
from airflow_hubspot_assoc.lineage import MAX_FILE_DATASETS, LineageDataset, LoadLineage, input_datasets
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.operators.upstream import upstream_xcoms

START = pendulum.datetime(2026, 1, 1, tz="UTC")
HAS_PROVIDER = importlib.util.find_spec("airflow.providers.openlineage") is not None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("s3://bucket/exports/part-00000.csv", ("s3://bucket", "exports/part-00000.csv")),
        ("s3://bucket/exports/", ("s3://bucket", "exports")),
        ("gs://bucket/exports/*.csv", ("gs://bucket", "exports")),
        ("s3://bucket/exports/**/part-*.parquet", ("s3://bucket", "exports")),
        ("file:///data/pairs.csv", ("file", "/data/pairs.csv")),
        ("/data/export/", ("file", "/data/export")),
        ("/data/export/part-*.csv.gz", ("file", "/data/export")),
    ],
)
def test_file_datasets_follow_openlineage_naming(path, expected):
    assert path_dataset(path) == LineageDataset(*expected)


def test_relative_local_paths_become_absolute():
    assert path_dataset("pairs.csv") == LineageDataset("file", os.path.abspath("pairs.csv"))


def test_xcom_datasets_name_the_upstream_task():
    assert xcom_dataset("my_dag", "extract") == LineageDataset("xcom://my_dag", "extract")
    assert xcom_dataset("my_dag", "extract", "pairs") == LineageDataset("xcom://my_dag", "extract/pairs")


def test_the_output_is_the_pairs_associations_in_the_portal_or_at_the_host():
    assert associations_dataset(
        "contact", "0-2", portal_id="12345678", base_url="https://api.hubapi.com"
    ) == LineageDataset("hubspot://12345678", "associations/contacts/companies")
    assert associations_dataset(
        "deals", "2-99", portal_id=None, base_url="http://127.0.0.1:8099"
    ) == LineageDataset("hubspot://127.0.0.1:8099", "associations/deals/2-99")


def test_inputs_from_a_path_from_files_and_from_too_many_files(hubspot_conn):
    load = LoadLineage("contacts", "companies", pairs_path="s3://b/exp/")
    assert input_datasets(load) == [LineageDataset("s3://b", "exp")]
    files = ["s3://b/exp/part-1.csv", "s3://b/exp/part-0.csv"]
    assert input_datasets(load, files) == [
        LineageDataset("s3://b", "exp/part-0.csv"),
        LineageDataset("s3://b", "exp/part-1.csv"),
    ]
    many = [f"s3://b/exp/part-{i}.csv" for i in range(MAX_FILE_DATASETS + 1)]
    assert input_datasets(load, many) == [LineageDataset("s3://b", "exp")]
    from airflow.sdk import ObjectStoragePath

    op = BatchCreateAssociationsOperator(
        task_id="t",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=ObjectStoragePath("file:///data/export/"),
    )
    assert input_datasets(op._lineage()) == [LineageDataset("file", "/data/export")]


def test_xcom_input_names_the_upstream_task_also_after_rendering_and_when_mapped(hubspot_conn):
    with DAG("lineage_xcom", schedule=None, start_date=START) as dag:

        @task
        def extract() -> list[list[str]]:
            return [["1", "101"]]

        @task
        def shards() -> list[list[list[str]]]:
            return [[["1", "101"]], [["2", "102"]]]

        plain = BatchCreateAssociationsOperator(
            task_id="plain", from_object_type="contacts", to_object_type="companies", pairs=extract()
        )
        mapped = BatchCreateAssociationsOperator.partial(
            task_id="mapped", from_object_type="contacts", to_object_type="companies"
        ).expand(pairs=shards())
        literal = BatchCreateAssociationsOperator(
            task_id="literal", from_object_type="contacts", to_object_type="companies", pairs=[["1", "2"]]
        )
    assert upstream_xcoms(plain) == [("extract", "return_value")]
    assert input_datasets(plain._lineage()) == [LineageDataset("xcom://lineage_xcom", "extract")]
    # At run time the task is a rendered copy: pairs is a list, the DAG still has the original.
    rendered = plain.prepare_for_execution()
    rendered.pairs = [["1", "101"]]
    assert upstream_xcoms(rendered) == [("extract", "return_value")]
    # A mapped task runs as an unmapped copy; the DAG holds the MappedOperator with the XComArg.
    unmapped = mapped.unmap({"pairs": [["1", "101"]]})
    assert unmapped is not mapped and unmapped.pairs == [["1", "101"]]
    assert dag.task_dict["mapped"] is mapped
    assert upstream_xcoms(unmapped) == [("shards", "return_value")]
    assert input_datasets(literal._lineage()) == []


@pytest.mark.skipif(HAS_PROVIDER, reason="checks the path without the optional provider")
def test_without_the_provider_the_methods_return_none(hubspot_conn):
    op = BatchCreateAssociationsOperator(
        task_id="t", from_object_type="contacts", to_object_type="companies", pairs=[["1", "101"]]
    )
    assert op.get_openlineage_facets_on_start() is None
    op.execute({})
    assert op.get_openlineage_facets_on_complete(None) is None


def test_execute_keeps_the_files_read_and_the_record_for_the_facets(hubspot_conn, tmp_path):
    for i in range(2):
        (tmp_path / f"part-{i}.csv").write_text(f"from_id,to_id\n{i + 1},{i + 101}\n")
    op = BatchCreateAssociationsOperator(
        task_id="t", from_object_type="contacts", to_object_type="companies", pairs_path=str(tmp_path)
    )
    assert (op._files_read, op._record) == ((), None)
    record = op.execute({})
    assert op._files_read == (str(tmp_path / "part-0.csv"), str(tmp_path / "part-1.csv"))
    assert op._record is not None and op._record.created == record["created"] == 2
    load = op._lineage()
    assert input_datasets(load, op._files_read) == [
        LineageDataset("file", str(tmp_path / "part-0.csv")),
        LineageDataset("file", str(tmp_path / "part-1.csv")),
    ]
    host = hubspot_conn.url.split("://", 1)[1]
    assert lineage.output_dataset(load) == LineageDataset(
        f"hubspot://{host}", "associations/contacts/companies"
    )


@pytest.mark.hubspot_conn(portal_id="12345678")
def test_the_output_names_the_connections_portal(hubspot_conn):
    op = BatchCreateAssociationsOperator(
        task_id="t", from_object_type="contact", to_object_type="0-2", pairs=[["1", "101"]]
    )
    load = op._lineage()
    assert (load.portal_id, load.from_type, load.to_type) == ("12345678", "contact", "0-2")
    assert lineage.output_dataset(load) == LineageDataset(
        "hubspot://12345678", "associations/contacts/companies"
    )
