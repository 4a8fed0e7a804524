"""``create_missing_labels=True`` on the create operator, through ``dag.test()`` against the stand-in:
a missing label is created once, before any write, with its inverse; a dry run creates none; without
the flag an unknown label still fails before any write."""

from __future__ import annotations

import csv
import re

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.exceptions import UnknownLabelError
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.operators.labels import LabelsOnDemand, internal_name
from tests.helpers import run_dag, task_results, task_states

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PAIRS = [["1", "101"], ["2", "102"]]


def run_create(request, **kwargs):
    kwargs.setdefault("from_object_type", "contacts")
    kwargs.setdefault("to_object_type", "companies")
    with DAG(
        re.sub(r"\W", "_", request.node.name)[:200], schedule=None, start_date=START, catchup=False
    ) as dag:
        BatchCreateAssociationsOperator(task_id="create", **kwargs)
    dag_run = run_dag(dag)
    return task_states(dag_run)["create"], task_results(dag_run).get("create")


def labels(hs, from_type="contacts", to_type="companies") -> dict[str, int]:
    """The pair's labels by name, as the stand-in's labels endpoint lists them."""
    return {t["label"]: t["typeId"] for t in hs.labels(from_type, to_type) if t.get("label")}


def label_creates(hs) -> list:
    return [r for r in hs.requests if r.endpoint == "labels_create"]


@pytest.mark.parametrize(
    "version", ["v4", pytest.param("2026-09", marks=pytest.mark.hubspot_conn(api_version="2026-09"))]
)
def test_missing_label_is_created_once_before_any_write(request, hubspot_conn, version):
    state, record = run_create(
        request,
        pairs=PAIRS,
        association_label="Decision maker",
        association_inverse_label="Decided by",
        create_missing_labels=True,
    )
    assert state == "success" and record["created"] == 2
    type_id = labels(hubspot_conn)["Decision maker"]
    assert labels(hubspot_conn, "companies", "contacts").get("Decided by") is not None
    assert len(label_creates(hubspot_conn)) == 1
    # The label was created before the first write, and the pairs carry it.
    endpoints = [r.endpoint for r in hubspot_conn.requests]
    assert endpoints.index("labels_create") < endpoints.index("batch_create")
    assert {(f, t) for f, t, c, i in hubspot_conn.associations("contacts", "companies") if i == type_id} == {
        ("1", "101"),
        ("2", "102"),
    }
    # A second run finds the label: nothing is created again.
    hubspot_conn.reset_stats()
    state, _ = run_create(
        request, pairs=PAIRS, association_label="decision maker", create_missing_labels=True
    )
    assert state == "success" and label_creates(hubspot_conn) == []


def test_row_labels_are_created_once_each(request, hubspot_conn, tmp_path):
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["from_id", "to_id", "association_label"])
        writer.writerows([["1", "101", "Champion"], ["2", "102", "champion"], ["3", "103", "Blocker"]])
    state, record = run_create(request, pairs_path=str(path), create_missing_labels=True)
    assert state == "success" and record["created"] == 3
    assert {"Champion", "Blocker"} <= set(labels(hubspot_conn))
    assert len(label_creates(hubspot_conn)) == 2


def test_dry_run_names_the_labels_it_would_create_and_creates_none(request, hubspot_conn):
    state, record = run_create(
        request, pairs=PAIRS, association_label="Decision maker", create_missing_labels=True, dry_run=True
    )
    assert state == "success" and record["dryRun"] is True
    assert label_creates(hubspot_conn) == []
    assert hubspot_conn.stats.write_requests == 0
    assert "Decision maker" not in labels(hubspot_conn)


def test_dry_run_log_line():
    lines: list[str] = []

    class Log:
        def warning(self, text, *args):
            lines.append(text % args)

    def unknown(label):
        raise UnknownLabelError(label, "contacts", "companies", ["Primary"])

    def create(*args, **kwargs):
        raise AssertionError("a dry run creates nothing")

    resolve = LabelsOnDemand(unknown, create, pair="contacts -> companies", log=Log(), dry_run=True)
    assert resolve("Decision maker") == ("USER_DEFINED", 0)
    assert resolve("decision maker ") == ("USER_DEFINED", 0)
    assert resolve.created == ["Decision maker"]
    assert lines == [
        "Dry run: would create the association label 'Decision maker' (name 'decision_maker') for "
        "contacts -> companies; existing labels: 'Primary'."
    ]


def test_without_the_flag_an_unknown_label_fails_before_any_write(request, hubspot_conn):
    hubspot_conn.add_label("contacts", "companies", "Billing contact")
    op = BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=PAIRS,
        association_label="Decision maker",
    )
    with pytest.raises(UnknownLabelError, match="Billing contact"):
        op.execute({})
    assert label_creates(hubspot_conn) == [] and hubspot_conn.stats.write_requests == 0


def test_internal_names_and_argument_checks():
    assert internal_name("Decision maker") == "decision_maker"
    assert internal_name("  Ex-Employee (2024) ") == "ex_employee_2024"
    with pytest.raises(ValueError, match="association_inverse_label"):
        BatchCreateAssociationsOperator(
            task_id="x",
            from_object_type="contacts",
            to_object_type="companies",
            pairs=PAIRS,
            association_label="A",
            association_inverse_label="B",
        )
