"""BatchArchiveAssociationsOperator through real Airflow (``dag.test()``) against the stand-in over HTTP:
removal by label, removal of every type (only with ``all_types``), the guards, v4 (204) and a dated
version (200 with ``errors``)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.operators.archive import BatchArchiveAssociationsOperator
from airflow_hubspot_assoc.record import BatchRecord
from tests.helpers import run_dag, task_results, task_states
from tests.testing.support import call, create_inputs

START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNLABELED = 279  # contacts -> companies, HubSpot's unlabeled default
PRIMARY = 1  # contacts -> companies, HubSpot's labelled "Primary"
PAIRS = [("1", "101"), ("2", "102"), ("3", "103")]
ARCHIVE_ENDPOINTS = ("batch_archive", "batch_labels_archive")


def dag_id(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:200]


def seed(hs, pairs, type_id: int, category: str = "HUBSPOT_DEFINED") -> None:
    call(hs, "v4", "batch_create", create_inputs(pairs, type_id, category))


def seeded(hs) -> int:
    """Every pair has the unlabeled type, Primary and a "Former employer" label; stats reset after."""
    label = hs.add_label("contacts", "companies", "Former employer")
    for type_id, category in (
        (UNLABELED, "HUBSPOT_DEFINED"),
        (PRIMARY, "HUBSPOT_DEFINED"),
        (label, "USER_DEFINED"),
    ):
        seed(hs, PAIRS, type_id, category)
    hs.reset_stats()
    return label


def stored(hs) -> set[tuple[str, str, str, int]]:
    return set(hs.associations("contacts", "companies"))


def run_archive(request, **kwargs):
    """Run the operator alone in a DAG; return (state, record or None)."""
    kwargs.setdefault("from_object_type", "contacts")
    kwargs.setdefault("to_object_type", "companies")
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        BatchArchiveAssociationsOperator(task_id="archive", **kwargs)
    dag_run = run_dag(dag)
    return task_states(dag_run)["archive"], task_results(dag_run).get("archive")


def refusal(**kwargs) -> str:
    """The error of ``execute`` (outside a DAG) for a refused archive."""
    from airflow_hubspot_assoc.exceptions import HubSpotConfigError

    op = BatchArchiveAssociationsOperator(
        task_id="archive", from_object_type="contacts", to_object_type="companies", **kwargs
    )
    with pytest.raises(HubSpotConfigError) as caught:
        op.execute({})
    return str(caught.value)


def archive_requests(hs) -> list:
    return [r for r in hs.requests if r.endpoint in ARCHIVE_ENDPOINTS]


@pytest.mark.parametrize(
    "version", ["v4", pytest.param("2026-09", marks=pytest.mark.hubspot_conn(api_version="2026-09"))]
)
def test_archive_by_label_removes_only_that_label(request, hubspot_conn, version):
    label = seeded(hubspot_conn)
    state, raw = run_archive(request, pairs=[list(p) for p in PAIRS], association_label="former employer")
    assert state == "success"
    record = BatchRecord.from_xcom(raw)
    assert (record.operation, record.archived, record.created, record.failed) == ("archive", 3, 0, 0)
    assert raw["operation"] == "archive" and raw["archived"] == 3
    assert {r.endpoint for r in archive_requests(hubspot_conn)} == {"batch_labels_archive"}
    # The label went; the unlabeled type and Primary stayed.
    assert stored(hubspot_conn) == {
        (f, t, "HUBSPOT_DEFINED", type_id) for f, t in PAIRS for type_id in (UNLABELED, PRIMARY)
    }
    assert {p.key for p in record.sample} == set(PAIRS)
    assert all(p.types == {("USER_DEFINED", label)} for p in record.sample)
    assert hubspot_conn.stats.write_requests == 1


@pytest.mark.parametrize(
    "version", ["v4", pytest.param("2026-09", marks=pytest.mark.hubspot_conn(api_version="2026-09"))]
)
def test_archive_of_every_type_needs_all_types(request, hubspot_conn, version):
    seeded(hubspot_conn)
    pairs = [list(p) for p in PAIRS]
    state, _ = run_archive(request, pairs=pairs)
    assert state == "failed"
    message = refusal(pairs=pairs)
    assert "3 rows name no association type" in message and "all_types=True" in message
    assert hubspot_conn.stats.write_requests == 0
    assert len(stored(hubspot_conn)) == 9

    state, raw = run_archive(request, pairs=pairs, all_types=True)
    assert state == "success"
    assert raw["archived"] == 3 and raw["failed"] == 0
    assert {r.endpoint for r in archive_requests(hubspot_conn)} == {"batch_archive"}
    assert stored(hubspot_conn) == set()
    assert hubspot_conn.associations("companies", "contacts") == set()


def test_unlabeled_type_is_refused_without_all_types_and_cascades_with_it(request, hubspot_conn):
    seeded(hubspot_conn)
    pairs = [list(p) for p in PAIRS[:1]]
    state, _ = run_archive(request, pairs=pairs, association_type_id=UNLABELED)
    assert state == "failed"
    assert "cascades its removal to every labelled association" in refusal(
        pairs=pairs, association_type_id=UNLABELED
    )
    assert hubspot_conn.stats.write_requests == 0

    state, raw = run_archive(request, pairs=pairs, association_type_id=UNLABELED, all_types=True)
    assert state == "success" and raw["archived"] == 1
    assert {r.endpoint for r in archive_requests(hubspot_conn)} == {"batch_labels_archive"}
    assert {(f, t) for f, t, _, _ in stored(hubspot_conn)} == set(PAIRS[1:])


def test_a_row_without_type_is_refused_when_the_operator_names_none(request, hubspot_conn, tmp_path):
    label = seeded(hubspot_conn)
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["from_id", "to_id", "association_type_id", "association_category"])
        writer.writerow(["1", "101", label, "USER_DEFINED"])
        writer.writerow(["2", "102", "", ""])
    state, _ = run_archive(request, pairs_path=str(path))
    assert state == "failed"
    assert "1 rows name no association type" in refusal(pairs_path=str(path))
    assert hubspot_conn.stats.write_requests == 0


def test_the_refusal_explains_the_cascade():
    from airflow_hubspot_assoc.exceptions import HubSpotConfigError
    from airflow_hubspot_assoc.guards import check_archive_scope

    known = [
        {"category": "HUBSPOT_DEFINED", "typeId": UNLABELED, "label": None},
        {"category": "HUBSPOT_DEFINED", "typeId": PRIMARY, "label": "Primary"},
    ]
    check_archive_scope(known, {PRIMARY}, 0, "contacts", "companies")
    with pytest.raises(HubSpotConfigError, match=r"cascades its removal.*all_types=True"):
        check_archive_scope(known, {UNLABELED, PRIMARY}, 0, "contacts", "companies")
    with pytest.raises(HubSpotConfigError, match=r"2 rows name no association type.*batch/archive"):
        check_archive_scope(known, {PRIMARY}, 2, "contacts", "companies")


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_archives": 2}, "3 pairs would be archived .* over max_archives=2"),
        ({"max_archive_ratio": 0.5}, "3 pairs would be archived, 100.0% .* over max_archive_ratio=0.5"),
    ],
)
def test_guards_fail_before_any_write_saying_how_many_would_go(request, hubspot_conn, limits, message):
    seeded(hubspot_conn)
    pairs = [list(p) for p in PAIRS]
    state, _ = run_archive(request, pairs=pairs, association_type_id=PRIMARY, **limits)
    assert state == "failed"
    assert re.search(message, refusal(pairs=pairs, association_type_id=PRIMARY, **limits))
    assert hubspot_conn.stats.write_requests == 0
    assert len(stored(hubspot_conn)) == 9

    from airflow_hubspot_assoc.exceptions import HubSpotConfigError
    from airflow_hubspot_assoc.guards import check_write_limits

    with pytest.raises(HubSpotConfigError, match=message):
        check_write_limits("archive", 3, 3, limits.get("max_archives"), limits.get("max_archive_ratio"))
    check_write_limits("archive", 3, 3, 3, 1.0)  # at the limit is allowed


def test_guards_within_limits_let_the_archive_go(request, hubspot_conn):
    seeded(hubspot_conn)
    state, raw = run_archive(
        request,
        pairs=[list(p) for p in PAIRS],
        association_type_id=PRIMARY,
        max_archives=3,
        max_archive_ratio=1.0,
    )
    assert state == "success" and raw["archived"] == 3
    assert {tid for _, _, _, tid in stored(hubspot_conn)} == {UNLABELED, seeded_label(hubspot_conn)}


def seeded_label(hs) -> int:
    return next(tid for _, _, cat, tid in hs.associations("contacts", "companies") if cat == "USER_DEFINED")


@pytest.mark.hubspot_conn(api_version="2026-09")
def test_dated_version_reports_failed_pairs_from_errors(request, hubspot_conn, tmp_path):
    """2026-09 answers 200 with ``errors``: a pair whose record is missing fails alone."""
    label = seeded(hubspot_conn)
    hubspot_conn.remove_records("companies", ["102"])
    failed_path = tmp_path / "failed.jsonl"
    state, raw = run_archive(
        request,
        pairs=[list(p) for p in PAIRS],
        association_label="Former employer",
        max_failed_ratio=0.5,
        failed_pairs_path=str(failed_path),
    )
    assert state == "success"
    assert (raw["archived"], raw["failed"]) == (2, 1)
    assert '"102"' in failed_path.read_text() or "102" in failed_path.read_text()
    assert ("1", "101", "USER_DEFINED", label) not in stored(hubspot_conn)


def test_dry_run_archives_nothing(request, hubspot_conn):
    seeded(hubspot_conn)
    state, raw = run_archive(
        request, pairs=[list(p) for p in PAIRS], association_label="Former employer", dry_run=True
    )
    assert state == "success" and raw["dryRun"] is True and raw["archived"] == 0
    assert hubspot_conn.stats.write_requests == 0
    assert len(stored(hubspot_conn)) == 9


def test_bad_limits_are_refused_at_construction():
    for kwargs in ({"max_archives": -1}, {"max_archives": True}, {"max_archive_ratio": 1.5}):
        with pytest.raises(ValueError, match="max_archive"):
            BatchArchiveAssociationsOperator(
                task_id="x", from_object_type="contacts", to_object_type="companies", pairs=[], **kwargs
            )


def test_checkpoints_and_files_work_as_for_create(request, hubspot_conn, tmp_path: Path):
    seeded(hubspot_conn)
    path = tmp_path / "pairs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["from_id", "to_id"])
        writer.writerows(PAIRS)
    state, raw = run_archive(
        request,
        pairs_path=str(path),
        association_type_id=PRIMARY,
        batch_size=1,
        checkpoint_path=str(tmp_path / "ckpt"),
    )
    assert state == "success" and raw["archived"] == 3 and raw["requests"] >= 3
    assert raw["source"]["kind"] == "path"
    assert hubspot_conn.stats.write_requests == 3


def test_per_row_labels_and_types_archive_only_what_each_row_names(request, hubspot_conn, tmp_path):
    label = seeded(hubspot_conn)
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["from_id", "to_id", "association_label", "association_type_id"])
        writer.writerow(["1", "101", "former employer", ""])
        writer.writerow(["2", "102", "", str(PRIMARY)])
        writer.writerow(["3", "103", "", ""])  # the operator's label
    state, raw = run_archive(request, pairs_path=str(path), association_label="Primary")
    assert state == "success" and raw["archived"] == 3
    left = {(f, t, tid) for f, t, _, tid in stored(hubspot_conn)}
    assert left == {
        ("1", "101", UNLABELED),
        ("1", "101", PRIMARY),
        ("2", "102", UNLABELED),
        ("2", "102", label),
        ("3", "103", UNLABELED),
        ("3", "103", label),
    }
