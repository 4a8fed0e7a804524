"""BatchCreateAssociationsOperator through real Airflow (``dag.test()``) against the stand-in over HTTP."""

from __future__ import annotations

import json

import pendulum
import pytest
from airflow.sdk import DAG, task

from airflow_hubspot_assoc.exceptions import PairInputError, UnknownLabelError
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.testing import LatencyConfig, RateLimitConfig
from tests.helpers import INPUT_KINDS, dag_id, run_dag, task_results, task_states, write_csv, write_input

START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNLABELED = ("HUBSPOT_DEFINED", 279)  # contacts -> companies, HubSpot's default association


def write_requests(hs) -> list:
    return [r for r in hs.requests if r.endpoint in ("batch_create", "batch_associate_default")]


def run_operator(request, **kwargs):
    """Run the operator alone in a DAG; return (state, record)."""
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        BatchCreateAssociationsOperator(task_id="create", **kwargs)
    dag_run = run_dag(dag)
    return task_states(dag_run)["create"], task_results(dag_run)["create"]


def run_numbered_pairs(request, count: int, **kwargs):
    """``count`` distinct contacts -> companies pairs (1 -> 10001, 2 -> 10002, ...), unlabelled."""
    pairs = [[i, 10_000 + i] for i in range(1, count + 1)]
    return run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs=pairs,
        association_type_id=279,
        **kwargs,
    )


PAIRS = [(1, 101), (2, 102), (3, 103), (4, 101), (5, 105)]
EXPECTED = {(str(f), str(t)) for f, t in PAIRS}


def stored(hs, types=UNLABELED, from_type="contacts", to_type="companies"):
    return {(f, t) for f, t, cat, tid in hs.associations(from_type, to_type) if (cat, tid) == types}


def test_pairs_from_xcom_taskflow(request, hubspot_conn):
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:

        @task
        def query_warehouse():
            return [[f, t] for f, t in PAIRS]

        BatchCreateAssociationsOperator(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            pairs=query_warehouse(),
            association_type_id=279,
        )
    dag_run = run_dag(dag)
    assert task_states(dag_run)["create"] == "success"
    record = task_results(dag_run)["create"]
    assert record["status"] == "COMPLETE"
    assert (record["total"], record["created"], record["failed"], record["invalid"]) == (5, 5, 0, 0)
    assert record["source"]["kind"] == "xcom"
    assert record["associationTypes"] == [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}
    ]
    assert {(s["from"], s["to"]) for s in record["sample"]} == EXPECTED
    assert stored(hubspot_conn) == EXPECTED
    assert json.loads(json.dumps(record)) == record  # plain JSON, fit for XCom


@pytest.mark.parametrize("fmt", INPUT_KINDS)
def test_every_file_format_and_location(request, hubspot_conn, tmp_path, memory_bucket, fmt):
    path = write_input(tmp_path, fmt, PAIRS, memory_bucket)
    state, record = run_operator(
        request, from_object_type="contacts", to_object_type="companies", pairs_path=path
    )
    assert state == "success"
    assert (record["total"], record["created"]) == (5, 5)
    assert record["source"] == {"kind": "path", "path": path, "fromIdField": "from_id", "toIdField": "to_id"}
    # no type given: HubSpot's default association endpoint, which uses the unlabeled type
    assert record["associationTypes"] == []
    assert stored(hubspot_conn) == EXPECTED
    assert {r.endpoint for r in write_requests(hubspot_conn)} == {"batch_associate_default"}


def test_label_by_name_resolved_once_case_insensitively(request, hubspot_conn, tmp_path):
    type_id = hubspot_conn.add_label("contacts", "companies", "Billing contact")
    state, record = run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(write_csv(tmp_path / "p.csv", PAIRS)),
        association_label="billing CONTACT",
        batch_size=2,
    )
    assert state == "success"
    assert record["associationTypes"] == [
        {"associationCategory": "USER_DEFINED", "associationTypeId": type_id}
    ]
    assert stored(hubspot_conn, ("USER_DEFINED", type_id)) == EXPECTED
    label_calls = [r for r in hubspot_conn.requests if r.endpoint == "labels"]
    assert len(label_calls) == 1


def test_per_row_labels_and_type_ids_with_fallback(request, hubspot_conn, tmp_path):
    billing = hubspot_conn.add_label("contacts", "companies", "Billing contact")
    rows = [(1, 101, "Billing contact", ""), (2, 102, "", "1"), (3, 103, "", "")]
    path = write_csv(
        tmp_path / "p.csv", rows, header=("from_id", "to_id", "association_label", "association_type_id")
    )
    state, record = run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(path),
        association_type_id=279,
    )
    assert state == "success", record
    assert stored(hubspot_conn, ("USER_DEFINED", billing)) == {("1", "101")}
    assert stored(hubspot_conn, ("HUBSPOT_DEFINED", 1)) == {("2", "102")}
    # HubSpot adds the unlabeled association with a pair's first label, as the stand-in does.
    assert stored(hubspot_conn, UNLABELED) == {("1", "101"), ("2", "102"), ("3", "103")}


def test_unknown_label_fails_before_any_write_listing_existing_labels(hubspot_conn, tmp_path):
    hubspot_conn.add_label("contacts", "companies", "Billing contact")
    op = BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(write_csv(tmp_path / "p.csv", PAIRS)),
        association_label="Nope",
    )
    with pytest.raises(UnknownLabelError, match="Billing contact"):
        op.execute({})
    assert write_requests(hubspot_conn) == []


@pytest.mark.hubspot_standin(missing_records={"companies": ["102", "105"]})
def test_missing_records_are_reported_pair_by_pair(request, hubspot_conn, tmp_path):
    failed_path = tmp_path / "out" / "failed.jsonl"
    state, record = run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(write_csv(tmp_path / "p.csv", PAIRS)),
        association_type_id=279,
        failed_pairs_path=str(failed_path),
        max_failed_ratio=0.5,
    )
    assert state == "success"
    assert (record["created"], record["failed"], record["numErrors"]) == (3, 2, 2)
    failed = [json.loads(line) for line in failed_path.read_text().splitlines()]
    assert {(f["from_id"], f["to_id"], f["line"]) for f in failed} == {("2", "102", 3), ("5", "105", 6)}
    for entry in failed:
        assert entry["category"] == "VALIDATION_ERROR" and entry["to_id"] in entry["message"]
    assert stored(hubspot_conn) == EXPECTED - {("2", "102"), ("5", "105")}
    assert record["failedPairsPath"] == str(failed_path)


@pytest.mark.hubspot_standin(missing_records={"companies": ["102"]})
def test_failed_ratio_policy_fails_the_task_after_sending_everything(request, hubspot_conn, tmp_path):
    failed_path = tmp_path / "failed.jsonl"
    state, _ = run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(write_csv(tmp_path / "p.csv", PAIRS)),
        batch_size=1,
        association_type_id=279,
        failed_pairs_path=str(failed_path),
    )
    assert state == "failed"
    assert len(write_requests(hubspot_conn)) == 5  # everything else was still sent
    assert stored(hubspot_conn) == EXPECTED - {("2", "102")}
    assert [json.loads(x)["to_id"] for x in failed_path.read_text().splitlines()] == ["102"]


def test_dry_run_sends_no_write(request, hubspot_conn, tmp_path):
    hubspot_conn.add_label("contacts", "companies", "Billing contact")
    state, record = run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(write_csv(tmp_path / "p.csv", [*PAIRS, (1, 101)])),
        association_label="Billing contact",
        dry_run=True,
    )
    assert state == "success"
    assert record["dryRun"] is True
    assert (record["total"], record["created"], record["duplicates"]) == (6, 0, 1)
    assert record["associationTypes"][0]["associationCategory"] == "USER_DEFINED"
    assert write_requests(hubspot_conn) == []
    assert hubspot_conn.associations("contacts", "companies") == set()


@pytest.mark.parametrize(
    ("content", "line", "field"),
    [
        ("from_id,to_id\n1,2\n3,abc\n", 3, "to_id"),
        ("from_id,to_id\n1,2\n0,5\n", 3, "from_id"),
        ("from_id,to_id\n1,2\n-4,5\n", 3, "from_id"),
        ("from_id,to_id\n1,2\n" + "1," + "9" * 40 + "\n", 3, "to_id"),
        (
            "from_id,to_id\n1,2\n" * 1 + "\n".join(f"{i},{i}" for i in range(3, 500)) + "\n,7\n",
            500,
            "from_id",
        ),
    ],
)
def test_bad_rows_name_file_line_and_field_and_send_nothing(hubspot_conn, tmp_path, content, line, field):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    op = BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(path),
    )
    with pytest.raises(PairInputError) as excinfo:
        op.execute({})
    assert (excinfo.value.line, excinfo.value.field) == (line, field)
    assert str(path) in str(excinfo.value) and f"line {line}" in str(excinfo.value)
    assert write_requests(hubspot_conn) == []


def test_bad_row_fails_the_dag_task_with_zero_writes(request, hubspot_conn, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("from_id,to_id\n1,2\n3,4\n5,x\n")
    state, _ = run_operator(
        request, from_object_type="contacts", to_object_type="companies", pairs_path=str(path)
    )
    assert state == "failed"
    assert write_requests(hubspot_conn) == []


def test_invalid_rows_are_reported_when_failures_are_tolerated(request, hubspot_conn, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("from_id,to_id\n1,101\n2,oops\n3,103\n4,104\n")
    failed_path = tmp_path / "failed.jsonl"
    state, record = run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=str(path),
        max_failed_ratio=0.3,
        failed_pairs_path=str(failed_path),
    )
    assert state == "success"
    assert (record["total"], record["created"], record["invalid"]) == (4, 3, 1)
    (entry,) = [json.loads(x) for x in failed_path.read_text().splitlines()]
    assert (entry["line"], entry["field"], entry["category"]) == (3, "to_id", "INVALID_INPUT")


def test_duplicates_within_a_batch_are_sent_once(request, hubspot_conn):
    pairs = [[1, 101], [1, 101], [2, 102], [1, 101]]
    state, record = run_operator(
        request, from_object_type="contacts", to_object_type="companies", pairs=pairs, association_type_id=279
    )
    assert state == "success"
    assert (record["total"], record["created"], record["duplicates"]) == (4, 2, 2)
    (req,) = write_requests(hubspot_conn)
    assert req.n_inputs == 2


@pytest.mark.hubspot_standin(max_batch_inputs=100)
def test_batch_too_large_is_split_and_the_load_goes_on(request, hubspot_conn):
    state, record = run_numbered_pairs(request, 450, batch_size=250, max_concurrency=1)
    assert state == "success", record
    assert (record["created"], record["failed"]) == (450, 0)
    assert len(stored(hubspot_conn)) == 450
    assert max(r.n_inputs for r in write_requests(hubspot_conn) if r.status < 300) <= 100


@pytest.mark.hubspot_standin(cancel_from_ids=["3"])
def test_canceled_batch_fails_the_task_after_the_others_were_sent(request, hubspot_conn):
    state, _ = run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs=[list(p) for p in PAIRS],
        association_type_id=279,
        batch_size=1,
        max_concurrency=1,
    )
    assert state == "failed"
    assert len(write_requests(hubspot_conn)) == 5
    assert stored(hubspot_conn) == EXPECTED - {("3", "103")}


@pytest.mark.hubspot_standin(visibility_delay_s=30)
def test_processing_batches_are_recorded_for_the_sensor(request, hubspot_conn):
    state, record = run_operator(
        request,
        from_object_type="contacts",
        to_object_type="companies",
        pairs=[list(p) for p in PAIRS],
        association_type_id=279,
        batch_size=2,
    )
    assert state == "success"
    assert record["status"] == "PROCESSING"
    assert record["pending"] == [{"status": "PROCESSING", "batches": 3, "pairs": 5}]


def test_mapped_over_shards(request, hubspot_conn, tmp_path):
    shards = [write_csv(tmp_path / f"part-{i}.csv", PAIRS[i::2]) for i in range(2)]
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        BatchCreateAssociationsOperator.partial(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            association_type_id=279,
            failed_pairs_path=str(tmp_path / "{input_name}.failed.jsonl"),
        ).expand(pairs_path=[str(p) for p in shards])
    dag_run = run_dag(dag)
    states = task_states(dag_run)
    assert states == {"create[0]": "success", "create[1]": "success"}
    results = task_results(dag_run)
    assert results["create[0]"]["total"] + results["create[1]"]["total"] == 5
    assert stored(hubspot_conn) == EXPECTED
    assert (tmp_path / "part-0.failed.jsonl").read_text() == ""
    assert (tmp_path / "part-1.failed.jsonl").read_text() == ""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pairs": [[1, 2]], "pairs_path": "x.csv"},
        {},
        {"pairs": [[1, 2]], "batch_size": 0},
        {"pairs": [[1, 2]], "batch_size": 2001},
        {"pairs": [[1, 2]], "max_concurrency": 0},
        {"pairs": [[1, 2]], "max_burst": 0},
        {"pairs": [[1, 2]], "max_burst": 251},
        {"pairs": [[1, 2]], "max_failed_ratio": 1.5},
        {"pairs": [[1, 2]], "association_type_id": 1, "association_label": "x"},
        {"pairs": [[1, 2]], "association_category": "NOPE"},
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs):
    with pytest.raises(ValueError):
        BatchCreateAssociationsOperator(
            task_id="create", from_object_type="contacts", to_object_type="companies", **kwargs
        )


@pytest.mark.parametrize("object_type", ["contacts/../x", "..", "a?b", "", "x" * 300])
def test_unsafe_object_types_are_refused_before_any_request(hubspot_conn, object_type):
    op = BatchCreateAssociationsOperator(
        task_id="create", from_object_type=object_type, to_object_type="companies", pairs=[[1, 2]]
    )
    with pytest.raises(ValueError, match="object type"):
        op.execute({})
    assert list(hubspot_conn.requests) == []


# A window of 20 requests per 2 s, 300 ms per answer: at max_concurrency=2, a few at a time would take
# 61 requests / (2 / 0.3 s) = 9 s; sending each window's 20 together takes 3 windows, 6.3 s.
_WINDOW = RateLimitConfig(max_requests=20, interval_ms=2_000)
_SLOW = LatencyConfig(base_ms=300)


@pytest.mark.slow  # paced by a real window and latency, by design: 7 to 11 s each
@pytest.mark.parametrize(
    ("max_burst", "least_peak", "most_peak"),
    [(None, 10, 20), (2, 1, 2)],
    ids=["window-paces", "max_burst-caps"],
)
@pytest.mark.hubspot_standin(rate_limit=_WINDOW, latency=_SLOW)
def test_an_announced_window_not_max_concurrency_paces_the_load(
    request, hubspot_conn, max_burst, least_peak, most_peak
):
    """With a window announced, a window's requests go out together, beyond ``max_concurrency``
    (unless ``max_burst`` says otherwise), and still never more than the window allows."""
    state, record = run_numbered_pairs(request, 6_000, max_concurrency=2, max_burst=max_burst)
    assert state == "success", record
    assert (record["created"], record["throttled"]) == (6_000, 0)
    stats = hubspot_conn.stats
    assert least_peak <= stats.peak_concurrency <= most_peak
    assert stats.rate_limited == 0


@pytest.mark.hubspot_standin(rate_limit=None, latency=LatencyConfig(base_ms=100))
def test_without_a_window_max_concurrency_holds(request, hubspot_conn):
    state, record = run_numbered_pairs(request, 2_000, max_concurrency=3)
    assert state == "success", record
    assert record["created"] == 2_000
    assert hubspot_conn.stats.peak_concurrency == 3


@pytest.mark.hubspot_standin(rate_limit=None, latency=LatencyConfig(base_ms=100))
def test_a_load_keeps_its_own_max_concurrency_when_an_earlier_hook_raised_the_shared_limiter(
    request, hubspot_conn
):
    """The process shares one limiter per app and its caps only rise: a load at 8 in flight, then
    one at 3 against the same app, must still send 3 at a time."""
    state, _ = run_numbered_pairs(request, 1_600, max_concurrency=8)
    assert state == "success"
    assert hubspot_conn.stats.peak_concurrency == 8
    hubspot_conn.reset_stats()
    state, record = run_numbered_pairs(request, 900, max_concurrency=3)
    assert state == "success", record
    assert hubspot_conn.stats.peak_concurrency == 3
