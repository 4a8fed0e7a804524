"""HubSpotBatchStatusSensor against the stand-in over real HTTP, alone and through real Airflow."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout, TaskDeferred
from airflow.sdk import DAG, task

from airflow_hubspot_assoc.exceptions import HubSpotAuthError, HubSpotConfigError, HubSpotError
from airflow_hubspot_assoc.sensors.associations import DEFER_GRACE_SECONDS, HubSpotBatchStatusSensor
from airflow_hubspot_assoc.triggers.associations import HubSpotBatchStatusTrigger
from airflow_hubspot_assoc.ui import HUBSPOT_UI_COLOR
from tests.helpers import dag_id, run_dag, task_results, task_states, write_csv
from tests.sensors.support import PRIMARY, UNLABELED, create, reads, record, specs, wait_visible

START = pendulum.datetime(2026, 1, 1, tz="UTC")
DELAY = 2.0  # the stand-in's visibility delay in the eventually consistent tests
PAIRS = [("1", "101"), ("2", "102"), ("3", "103"), ("4", "101")]
eventual = pytest.mark.hubspot_standin(visibility_delay_s=DELAY)


def sensor(**kwargs) -> HubSpotBatchStatusSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("poke_interval", 0.3)
    kwargs.setdefault("timeout", 30)
    return HubSpotBatchStatusSensor(**kwargs)


def run_sensor(request, *, create_first=None, **kwargs):
    """Run the sensor in a DAG through ``dag.test()``; return (state, XCom value).

    With ``create_first=(hs, pairs)`` an upstream task creates the pairs and returns the batch record
    (``batch=create.output``), so the sensor's first check follows the writes closely.
    """
    with DAG(dag_id(request), schedule=None, start_date=START, catchup=False) as dag:
        if create_first is not None:
            hs, pairs = create_first

            @task
            def create_pairs():
                create(hs, pairs)
                return record(pairs)

            kwargs["batch"] = create_pairs()
        sensor(**kwargs)
    dag_run = run_dag(dag)
    return task_states(dag_run)["wait"], task_results(dag_run)["wait"]


def spy(monkeypatch, cls, name: str) -> list[dict]:
    """Record the keyword arguments of every call of ``cls.name`` (behaviour unchanged)."""
    calls: list[dict] = []
    original = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, wrapper)
    return calls


# -- the surface -----------------------------------------------------------------------------------


class TestArguments:
    @pytest.mark.parametrize(
        ("kwargs", "quoted"),
        [
            ({"verify": "most"}, "'most'"),
            ({"poke_interval": -1}, "-1"),
            ({"poke_interval": 0}, "0"),
            ({"timeout": -5}, "-5"),
            ({"timeout": "soon"}, "'soon'"),
            ({"mode": "sometimes"}, "'sometimes'"),
            ({"deferrable": "yes"}, "'yes'"),
            ({"max_deferred_pairs": 0}, "0"),
            ({"max_deferred_pairs": 10_001}, "10001"),
            ({"max_deferred_pairs": True}, "True"),
            ({"hubspot_conn_id": 5}, "5"),
        ],
    )
    def test_bad_static_arguments_quote_the_value(self, kwargs, quoted):
        with pytest.raises(ValueError, match=re.escape(quoted)):
            sensor(batch={}, **kwargs)

    def test_surface(self):
        s = sensor(batch="{{ ti.xcom_pull('create') }}", poke_interval=timedelta(seconds=2))
        assert set(s.template_fields) == {"batch", "hubspot_conn_id"}
        assert isinstance(s.template_fields, tuple)
        assert s.template_fields_renderers == {"batch": "json"}
        assert s.ui_color == HUBSPOT_UI_COLOR == "#ff7a59"
        assert (s.verify, s.poke_interval, s.mode, s.deferrable) == ("sample", 2.0, "poke", False)
        with pytest.raises(TypeError):
            HubSpotBatchStatusSensor("wait", {})  # type: ignore[misc]  # keyword-only

    def test_bad_batch_fails_clearly(self, hubspot_conn):
        with pytest.raises(HubSpotConfigError, match="batch must be the operator's batch record"):
            sensor(batch="not a record").execute({})
        with pytest.raises(HubSpotConfigError, match="status must be one of"):
            sensor(batch=record(PAIRS, status="DONE")).execute({})
        assert hubspot_conn.stats.requests_total == 0


# -- decisions without reading ---------------------------------------------------------------------


def test_canceled_fails_at_once_with_reasons_and_no_reads(hubspot_conn):
    errors = [
        {"status": "error", "category": "VALIDATION_ERROR", "message": "Too many associations for 1"},
        {"status": "error", "category": "VALIDATION_ERROR", "message": "Too many associations for 1"},
    ]
    rec = record(PAIRS, status="CANCELED", errors=errors, numErrors=4, created=0, failed=4)
    with pytest.raises(AirflowFailException, match=r"canceled.*Too many associations for 1 \(x2\)"):
        sensor(batch=rec).execute({})
    assert hubspot_conn.stats.requests_total == 0
    assert hubspot_conn.requests == []


def test_canceled_fails_the_task_in_a_dag(request, hubspot_conn):
    state, _ = run_sensor(request, batch=record(PAIRS, status="CANCELED"), retries=3)
    assert state == "failed"  # AirflowFailException: no retries either
    assert hubspot_conn.stats.requests_total == 0


def test_verify_none_trusts_complete(hubspot_conn):
    result = sensor(batch=record(PAIRS), verify="none").execute({})
    assert result["status"] == "TRUSTED"
    assert hubspot_conn.stats.requests_total == 0


@eventual
def test_verify_none_reads_the_sample_when_not_complete(hubspot_conn):
    create(hubspot_conn, PAIRS)
    result = sensor(batch=record(PAIRS, status="PROCESSING"), verify="none").execute({})
    assert result == {
        "status": "CONFIRMED",
        "verify": "none",
        "expected": 4,
        "confirmed": 4,
        "batchStatus": "PROCESSING",
    }
    assert reads(hubspot_conn)


def test_dry_run_and_empty_batches_need_no_reads(hubspot_conn):
    assert sensor(batch=record(PAIRS, dryRun=True)).execute({})["status"] == "DRY_RUN"
    assert sensor(batch=record([], created=0)).execute({})["expected"] == 0
    assert hubspot_conn.stats.requests_total == 0


# -- waiting in the worker -------------------------------------------------------------------------


@eventual
@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_waits_until_visible_through_airflow(request, hubspot_conn, mode, monkeypatch):
    executions = spy(monkeypatch, HubSpotBatchStatusSensor, "execute")
    state, result = run_sensor(request, create_first=(hubspot_conn, PAIRS), mode=mode, poke_interval=0.5)
    assert state == "success"
    assert result == {
        "status": "CONFIRMED",
        "verify": "sample",
        "expected": 4,
        "confirmed": 4,
        "batchStatus": "COMPLETE",
    }
    assert len(reads(hubspot_conn)) >= 2  # it really waited: the first read saw nothing yet
    if mode == "poke":
        assert len(executions) == 1
    else:
        assert len(executions) >= 2  # every reschedule is a new try of execute()


@eventual
def test_batch_as_json_text_and_conn_id_from_record(hubspot_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_OTHER", hubspot_conn.connection_uri())
    monkeypatch.delenv("AIRFLOW_CONN_HUBSPOT_DEFAULT")
    create(hubspot_conn, PAIRS)
    result = sensor(batch=json.dumps(record(PAIRS, hubspotConnId="hubspot_other"))).execute({})
    assert result["confirmed"] == 4


@eventual
def test_only_missing_pairs_are_read_again(hubspot_conn):
    early, late = PAIRS[:2], PAIRS[2:]
    create(hubspot_conn, early)
    wait_visible(hubspot_conn, DELAY)
    create(hubspot_conn, late)
    hubspot_conn.reset_stats()
    sensor(batch=record(PAIRS), poke_interval=0.3).execute({})
    sizes = [r.n_inputs for r in reads(hubspot_conn)]
    assert sizes[0] == 4  # the first poke reads every from-id
    assert len(sizes) >= 2
    assert set(sizes[1:]) == {2}  # later pokes only the two still missing


@pytest.mark.hubspot_standin(visibility_delay_s=60)
def test_timeout_names_the_missing_pairs(hubspot_conn):
    create(hubspot_conn, PAIRS[:2])  # visible only after a minute
    # 25 pairs: the message names 20 and counts the rest.
    pairs = [(str(i), str(100 + i)) for i in range(1, 26)]
    with pytest.raises(AirflowSensorTimeout) as caught:
        sensor(batch=record(pairs), timeout=1, poke_interval=0.3).execute({})
    message = str(caught.value)
    assert "0 of 25 confirmed; 25 not visible yet" in message
    assert "1 -> 101 [HUBSPOT_DEFINED/279]: not associated" in message
    assert message.count(": not associated") == 20
    assert "... and 5 more" in message


def test_types_must_match(hubspot_conn):
    create(hubspot_conn, PAIRS, types=[UNLABELED])
    with pytest.raises(AirflowSensorTimeout, match=r"has only \[HUBSPOT_DEFINED/279\]"):
        sensor(batch=record(PAIRS, types=[PRIMARY]), timeout=0.5, poke_interval=0.2).execute({})


def test_default_associations_accept_any_type(hubspot_conn):
    create(hubspot_conn, PAIRS, types=[])
    assert sensor(batch=record(PAIRS, types=[])).execute({})["confirmed"] == 4


@pytest.mark.hubspot_standin(read_page_size=2)
def test_follows_paging_for_one_from_id(hubspot_conn):
    many = [("1", str(200 + i)) for i in range(7)]
    create(hubspot_conn, many)
    # The sample names the last company only: it is on the fourth page of contact 1.
    rec = record(many)
    rec["sample"] = rec["sample"][-1:]
    hubspot_conn.reset_stats()
    assert sensor(batch=rec).execute({})["confirmed"] == 1
    assert len(reads(hubspot_conn)) == 4


def test_auth_error_fails_with_the_hooks_message(hubspot_standin, monkeypatch):
    bad = json.loads(hubspot_standin.connection_uri())
    bad["password"] = "pat-na1-wrong"
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(bad))
    started = time.monotonic()
    with pytest.raises(HubSpotAuthError) as caught:
        sensor(batch=record(PAIRS), timeout=30).execute({})
    assert time.monotonic() - started < 20  # not waited for as "not yet"
    assert "pat-na1-wrong" not in str(caught.value)


# -- verify="all" ----------------------------------------------------------------------------------


@eventual
def test_verify_all_streams_the_source_and_skips_failed_and_invalid(tmp_path, hubspot_conn):
    rows = [(1, 101), (2, 102), ("x", 103), (3, 103), (4, 104), (5, 105)]
    source = write_csv(tmp_path / "pairs.csv", rows)
    failed_path = tmp_path / "failed.jsonl"
    failed_path.write_text(
        json.dumps({"from_id": "4", "to_id": "104", "category": "VALIDATION_ERROR"}) + "\n"
    )
    created = [("1", "101"), ("2", "102"), ("3", "103"), ("5", "105")]
    create(hubspot_conn, created)
    rec = record(
        created[:1],  # a sample that alone would not cover everything
        total=6,
        created=4,
        failed=1,
        invalid=1,
        failedPairsPath=str(failed_path),
        source={"kind": "path", "path": str(source), "fromIdField": "from_id", "toIdField": "to_id"},
    )
    result = sensor(batch=rec, verify="all").execute({})
    assert (result["expected"], result["confirmed"]) == (4, 4)


def test_verify_all_failed_pairs_from_the_record_errors(tmp_path, hubspot_conn):
    source = write_csv(tmp_path / "pairs.csv", [(1, 101), (9, 109)])
    create(hubspot_conn, [("1", "101")])
    error = {"category": "VALIDATION_ERROR", "message": "no contact 9", "context": {"fromObjectId": ["9"]}}
    rec = record(
        [("1", "101")],
        total=2,
        failed=1,
        errors=[error],
        source={"kind": "path", "path": str(source)},
    )
    assert sensor(batch=rec, verify="all").execute({})["confirmed"] == 1


def test_verify_all_asks_for_failed_pairs_path(tmp_path, hubspot_conn):
    source = write_csv(tmp_path / "pairs.csv", [(1, 101), (9, 109)])
    rec = record(
        [("1", "101")],
        total=2,
        failed=1,
        errors=[{"category": "VALIDATION_ERROR", "message": "request refused"}],
        source={"kind": "path", "path": str(source)},
    )
    with pytest.raises(HubSpotConfigError, match="failed_pairs_path"):
        sensor(batch=rec, verify="all").execute({})
    assert hubspot_conn.stats.requests_total == 0


def test_verify_all_with_xcom_source(hubspot_conn):
    create(hubspot_conn, PAIRS)
    assert sensor(batch=record(PAIRS), verify="all").execute({})["confirmed"] == 4
    partial = record(PAIRS, created=500)  # the sample holds 4 of 500 created pairs
    with pytest.raises(HubSpotConfigError, match="only 4 of 500 created pairs"):
        sensor(batch=partial, verify="all").execute({})


def test_verify_all_resolves_row_labels(tmp_path, hubspot_conn):
    boss = hubspot_conn.add_label("contacts", "companies", "Boss")
    source = write_csv(
        tmp_path / "pairs.csv",
        [(1, 101, "Boss"), (2, 102, "")],
        header=("from_id", "to_id", "association_label"),
    )
    create(hubspot_conn, [("1", "101")], types=[("USER_DEFINED", boss)])
    create(hubspot_conn, [("2", "102")], types=[UNLABELED])
    rec = record(
        [],
        total=2,
        created=2,
        associationTypes=[],
        typesUsed=[specs([("USER_DEFINED", boss)]), specs([UNLABELED])],
        defaultTypes=specs([UNLABELED]),
        source={"kind": "path", "path": str(source)},
    )
    assert sensor(batch=rec, verify="all").execute({})["confirmed"] == 2
    # Had company 101 only the unlabeled type, the label would still be missing.
    rec["source"]["path"] = str(
        write_csv(
            tmp_path / "other.csv", [(2, 102, "Boss")], header=("from_id", "to_id", "association_label")
        )
    )
    with pytest.raises(AirflowSensorTimeout, match=r"2 -> 102 \[USER_DEFINED/\d+\]: has only"):
        sensor(batch=rec, verify="all", timeout=0.5, poke_interval=0.2).execute({})


@eventual
def test_verify_all_keeps_a_bounded_number_of_pairs_outstanding(tmp_path, hubspot_conn):
    pairs = [(str(i), str(100 + i)) for i in range(1, 11)]
    source = write_csv(tmp_path / "pairs.csv", pairs)
    create(hubspot_conn, pairs)
    s = sensor(
        batch=record([], total=10, created=10, source={"kind": "path", "path": str(source)}),
        verify="all",
        max_deferred_pairs=3,
    )
    s.read_chunk_from_ids = 2  # type: ignore[misc]
    hubspot_conn.reset_stats()
    # One check: two chunks of two from-ids read back (4 outstanding >= 3), the other 6 rows counted only.
    assert s._check(s._load_record()) is False
    progress = s._progress
    assert (progress.position, progress.total, len(progress.pending), progress.confirmed) == (4, 10, 4, 0)
    assert "0 of 10 confirmed; 4 not visible yet; 6 not read back yet" in progress.status_text()
    assert sum(r.n_inputs for r in reads(hubspot_conn)) == 4
    result = s.execute({})
    assert (result["expected"], result["confirmed"]) == (10, 10)


# -- deferrable ------------------------------------------------------------------------------------


@pytest.mark.hubspot_standin(visibility_delay_s=4)
def test_defers_with_only_the_missing_pairs(hubspot_conn):
    create(hubspot_conn, PAIRS[:2])
    wait_visible(hubspot_conn, 4)
    create(hubspot_conn, PAIRS[2:])  # these two stay invisible for 4 s
    before = time.time()
    with pytest.raises(TaskDeferred) as caught:
        sensor(batch=record(PAIRS), deferrable=True, timeout=600, poke_interval=5).execute({})
    deferred = caught.value
    trigger = deferred.trigger
    assert isinstance(trigger, HubSpotBatchStatusTrigger)
    assert deferred.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_hubspot_assoc.triggers.associations.HubSpotBatchStatusTrigger"
    assert [row[:2] for row in kwargs["pairs"]] == [list(p) for p in PAIRS[2:]]
    assert kwargs["type_sets"] == [[["HUBSPOT_DEFINED", 279]]]
    assert (kwargs["confirmed"], kwargs["total"], kwargs["poll_interval"]) == (2, 4, 5.0)
    assert kwargs["hubspot_conn_id"] == "hubspot_default"
    assert before + 595 <= kwargs["deadline"] <= time.time() + 600
    assert isinstance(deferred.timeout, timedelta)
    assert 600 + DEFER_GRACE_SECONDS - 10 <= deferred.timeout.total_seconds() <= 600 + DEFER_GRACE_SECONDS
    assert hubspot_conn.token not in json.dumps(kwargs)


def test_deferrable_does_not_defer_when_already_visible(hubspot_conn):
    create(hubspot_conn, PAIRS)
    assert sensor(batch=record(PAIRS), deferrable=True).execute({})["confirmed"] == 4


@eventual
def test_deferrable_with_too_many_missing_waits_in_the_worker(hubspot_conn):
    create(hubspot_conn, PAIRS)
    result = sensor(batch=record(PAIRS), deferrable=True, max_deferred_pairs=2).execute({})
    assert result["confirmed"] == 4  # no TaskDeferred: it waited in the worker instead


@eventual
def test_deferrable_through_airflow(request, hubspot_conn, monkeypatch):
    triggers = spy(monkeypatch, HubSpotBatchStatusTrigger, "run")
    completions = spy(monkeypatch, HubSpotBatchStatusSensor, "execute_complete")
    state, result = run_sensor(
        request, create_first=(hubspot_conn, PAIRS), deferrable=True, poke_interval=0.5
    )
    assert state == "success"
    assert result["status"] == "CONFIRMED"
    assert (result["expected"], result["confirmed"]) == (4, 4)
    assert len(triggers) == 1  # dag.test() ran the trigger in line ...
    assert completions[0]["event"]["status"] == "success"  # ... and resumed the sensor with its event


class TestExecuteComplete:
    def test_success(self):
        event = {
            "status": "success",
            "message": "All visible",
            "confirmed": 4,
            "total": 4,
            "missing_count": 0,
        }
        result = sensor(batch=record(PAIRS)).execute_complete({}, event)
        assert result == {
            "status": "CONFIRMED",
            "verify": "sample",
            "expected": 4,
            "confirmed": 4,
            "batchStatus": "COMPLETE",
        }

    def test_timeout(self):
        event = {
            "status": "timeout",
            "message": "Timed out: 2 of 4 confirmed; 1 -> 101 ...",
            "missing_count": 2,
        }
        with pytest.raises(AirflowSensorTimeout, match="2 of 4 confirmed"):
            sensor(batch=record(PAIRS)).execute_complete({}, event)

    def test_error(self):
        with pytest.raises(HubSpotError, match="HubSpot API error 401"):
            sensor(batch=record(PAIRS)).execute_complete(
                {}, {"status": "error", "message": "HubSpot API error 401"}
            )

    @pytest.mark.parametrize("event", [{"status": "maybe", "message": "?"}, {}, None, "success"])
    def test_anything_else(self, event):
        with pytest.raises(HubSpotError, match=r"Unexpected trigger event status|without a usable event"):
            sensor(batch=record(PAIRS)).execute_complete({}, event)


def test_verify_all_with_an_unreadable_failed_pairs_file(tmp_path, hubspot_conn):
    source = write_csv(tmp_path / "pairs.csv", [(1, 101), (9, 109)])
    rec = record(
        [("1", "101")],
        total=2,
        failed=1,
        failedPairsPath=str(tmp_path / "gone.jsonl"),
        source={"kind": "path", "path": str(source)},
    )
    with pytest.raises(HubSpotConfigError, match="Cannot read the batch's failed pairs"):
        sensor(batch=rec, verify="all").execute({})
