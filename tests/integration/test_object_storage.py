"""Inputs, failed pairs and checkpoints on S3, through ``ObjectStoragePath`` and an Airflow AWS connection.

Why these run against a real S3 API (``moto`` in server mode, see ``tests/s3_server.py``): object
stores have no folders, so code that works on local disk can fail there only at the end of a load
(``rmdir`` of an emptied prefix raises, ``mkdir`` may try to create a bucket) or lag behind it (each
write is a request). Users on Celery or Kubernetes keep this state on object storage, where a retry on
another worker must find it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pendulum
import pytest

from airflow_hubspot_assoc.checkpoint import CheckpointSaver, CheckpointStore, checkpoint_key
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.testing import HubSpotStandIn, LatencyConfig, StandInConfig
from tests.helpers import run_dag, task_results, task_states
from tests.integration.reliability_support import expectation, write_pairs_csv
from tests.s3_server import CONN_ID, S3Server, moto_s3_server

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def s3() -> S3Server:
    """One moto server for the module, reached through ``aws_default`` (its endpoint_url in the extra).

    Module-scoped because Airflow caches an object store per connection id for the life of the
    process: every test of the module must reach the same endpoint.
    """
    with moto_s3_server() as server, pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_AWS_DEFAULT", server.connection_json())
        yield server


@pytest.fixture
def bucket(s3: S3Server, request: pytest.FixtureRequest) -> str:
    name = request.node.name.lower().replace("_", "-")[:50].strip("-")
    return s3.create_bucket(name)


def url(bucket: str, key: str) -> str:
    return f"s3://{CONN_ID}@{bucket}/{key}"


def ti_context(map_index: int = -1, try_number: int = 1) -> dict:
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="create", map_index=map_index, try_number=try_number)
    return {"ti": ti}


def test_checkpoint_store_round_trip_and_clear_on_s3(s3, bucket):
    store = CheckpointStore(url(bucket, "state/checkpoints"), checkpoint_key("d", "r", "create", 3))
    assert store.load() is None
    store.save({"rows": 10, "record": {"created": 9}}, [{"from_id": "1", "to_id": "2", "line": 5}])
    store.save({"rows": 20, "record": {"created": 18}}, [])
    store.save({"rows": 30, "record": {"created": 27}}, [{"from_id": "3", "to_id": "4", "line": 25}])
    prefix = "state/checkpoints/d/r/create/map_3/"
    assert s3.keys(bucket, prefix) == [
        f"{prefix}failed-000000.jsonl",
        f"{prefix}failed-000001.jsonl",
        f"{prefix}state.json",
    ]

    retry = CheckpointStore(url(bucket, "state/checkpoints"), checkpoint_key("d", "r", "create", 3))
    state = retry.load()
    assert state is not None and state["rows"] == 30 and state["record"] == {"created": 27}
    assert [e["line"] for e in retry.failed_entries(state)] == [5, 25]
    # a retry's next part follows the parts it found
    retry.save({"rows": 40, "record": {}}, [{"from_id": "5", "to_id": "6", "line": 35}])
    assert f"{prefix}failed-000002.jsonl" in s3.keys(bucket, prefix)

    retry.clear()  # used to raise NotADirectoryError: an emptied prefix does not exist on S3
    assert s3.keys(bucket, "state/") == []
    assert retry.load() is None
    retry.clear()  # nothing there: still fine


def test_checkpoint_saver_survives_a_store_outage_and_loses_no_failed_pair(s3, bucket, caplog):
    """A real outage: the bucket is deleted mid-load, writes fail, then it comes back."""
    import logging

    store = CheckpointStore(url(bucket, "ck"), "key")
    saver = CheckpointSaver(store, logging.getLogger("test.saver"))
    saver.submit({"rows": 1}, [{"line": 1}])
    assert saver.flush(timeout=30)
    for key in s3.keys(bucket):
        s3.client().delete_object(Bucket=bucket, Key=key)
    s3.client().delete_bucket(Bucket=bucket)
    for row in range(2, 6):
        saver.submit({"rows": row}, [{"line": row}])
    deadline = time.monotonic() + 30
    while saver.write_errors == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert saver.write_errors > 0, "the outage did not make a write fail"
    s3.create_bucket(bucket)
    assert saver.flush(timeout=30), "the saver did not catch up once the store was back"
    saver.close()

    state = CheckpointStore(url(bucket, "ck"), "key").load()
    assert state is not None and state["rows"] == 5
    # the first part went with the deleted bucket; every failed pair handed over since is in a part
    lines = [e["line"] for e in store.failed_entries({"failedParts": state["failedParts"][1:]})]
    assert lines == [2, 3, 4, 5]
    assert "Could not write the checkpoint" in caplog.text


def sharded_input(s3: S3Server, bucket: str, tmp_path, shards: int, per_shard: int):
    """Seeded CSV shards written locally (to compute expectations) and uploaded under ``in/``."""
    files = []
    for shard in range(shards):
        local = write_pairs_csv(
            tmp_path / f"part-{shard:05d}.csv", per_shard, seed=shard, from_base=(shard + 1) * 10**7
        )
        s3.write(bucket, f"in/part-{shard:05d}.csv", local.path.read_text())
        files.append(local)
    return files


@pytest.mark.hubspot_standin(missing_ratio=0.01, seed=11)
def test_mapped_load_with_everything_on_s3_succeeds_and_leaves_no_checkpoint(
    hubspot_conn, s3, bucket, tmp_path
):
    from airflow.sdk import DAG

    shards = sharded_input(s3, bucket, tmp_path, shards=4, per_shard=500)
    dag_id = "s3_mapped_load"
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
        BatchCreateAssociationsOperator.partial(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            association_type_id=279,
            batch_size=50,
            max_failed_ratio=0.1,
            failed_pairs_path=url(bucket, "state/failed/{map_index}.jsonl"),
            checkpoint_path=url(bucket, "state/checkpoints"),
        ).expand(pairs_path=[url(bucket, f"in/part-{n:05d}.csv") for n in range(len(shards))])
    run = run_dag(dag)

    states, records = task_states(run), task_results(run)
    assert set(states.values()) == {"success"}, states
    for index, shard in enumerate(shards):
        expected = expectation(hubspot_conn, shard)
        record = records[f"create[{index}]"]
        assert (record["total"], record["created"], record["failed"]) == (
            500,
            500 - len(expected.failed),
            len(expected.failed),
        )
        assert record["failedPairsPath"] == url(bucket, f"state/failed/{index}.jsonl")
        entries = [json.loads(x) for x in s3.read(bucket, f"state/failed/{index}.jsonl").splitlines()]
        assert {(e["from_id"], e["to_id"], e["line"]) for e in entries} == expected.failed
        assert all(e["category"] == "VALIDATION_ERROR" for e in entries)
    assert sum(len(expectation(hubspot_conn, s).failed) for s in shards) > 0, "no failure was exercised"
    stored = hubspot_conn.associations("contacts", "companies")
    assert stored == set().union(*(expectation(hubspot_conn, s).stored for s in shards))
    assert s3.keys(bucket, "state/checkpoints") == [], "checkpoint objects left behind"


@pytest.mark.hubspot_standin(seed=2)
def test_cleanup_that_fails_is_logged_and_does_not_fail_the_load(
    hubspot_conn, s3, bucket, tmp_path, caplog, capfd
):
    """Deleting the checkpoint fails: the load still succeeds and says what it left behind.

    The failure is injected by patching ``unlink`` of Airflow's ``ObjectStoragePath``: moto does not
    enforce permissions, so a refused delete cannot be produced against it.
    """
    from airflow.sdk import ObjectStoragePath

    shard = sharded_input(s3, bucket, tmp_path, shards=1, per_shard=100)[0]

    def refuse(self, missing_ok=False):
        raise PermissionError(f"AccessDenied: {self}")

    operator = BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=url(bucket, "in/part-00000.csv"),
        association_type_id=279,
        checkpoint_path=url(bucket, "state/checkpoints"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ObjectStoragePath, "unlink", refuse)
        record = operator.execute(ti_context())
    assert record["created"] == len(expectation(hubspot_conn, shard).stored) == 100
    out, err = capfd.readouterr()  # the task logger may write through structlog, not logging
    assert "Could not delete" in caplog.text + out + err
    assert s3.keys(bucket, "state/checkpoints") == ["state/checkpoints/d/r/create/unmapped/state.json"]


# -- a killed try resumes from its checkpoint on S3 ---------------------------------------------------
N_PAIRS = 2_000
BATCH_SIZE = 10
MAX_CONCURRENCY = 4
KILL_AFTER_WRITES = 60
TRY_SCRIPT = """
import json, sys
from types import SimpleNamespace
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
ti = SimpleNamespace(dag_id="d", run_id="r", task_id="create", map_index=-1, try_number=1)
BatchCreateAssociationsOperator(**json.loads(sys.argv[1])).execute({"ti": ti})
"""


@pytest.mark.parametrize("store", ["local", "s3"])
def test_killed_try_resumes_from_its_checkpoint_resending_at_most_the_batches_in_flight(
    store, s3, bucket, tmp_path, monkeypatch
):
    """SIGKILL mid-load (nothing runs on the way down); the retry resumes from the checkpoint.

    Latency is constant, so batches are answered in the order they were sent and the load sends in
    waves of ``MAX_CONCURRENCY``. The retry sends again what was in flight at the kill, plus what was
    committed while the last checkpoint write was under way: on local disk a write takes well under
    a millisecond (at most one batch more); on S3 it is a request, and the kill here comes right when
    a wave was committed and the next sent, so up to one wave more.
    """
    shard = sharded_input(s3, bucket, tmp_path, shards=1, per_shard=N_PAIRS)[0]
    checkpoints = str(tmp_path / "checkpoints") if store == "local" else url(bucket, "state/checkpoints")
    kwargs = {
        "task_id": "create",
        "from_object_type": "contacts",
        "to_object_type": "companies",
        "pairs_path": url(bucket, "in/part-00000.csv"),
        "association_type_id": 279,
        "batch_size": BATCH_SIZE,
        "max_concurrency": MAX_CONCURRENCY,
        "failed_pairs_path": url(bucket, "state/failed.jsonl"),
        "checkpoint_path": checkpoints,
    }
    config = StandInConfig(
        seed=4, latency=LatencyConfig(base_ms=300), rate_limit=None, request_log_size=10_000
    )
    with HubSpotStandIn(config) as hs:
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", hs.connection_uri())
        log_path = tmp_path / "first-try.log"
        with log_path.open("wb") as output:
            first = subprocess.Popen(
                [sys.executable, "-c", TRY_SCRIPT, json.dumps(kwargs)],
                env=dict(os.environ),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 180
            while hs.stats.write_requests < KILL_AFTER_WRITES and time.monotonic() < deadline:
                assert first.poll() is None, log_path.read_text(errors="replace")[-3000:]
                time.sleep(0.01)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        writes_at_kill = hs.stats.write_requests
        assert KILL_AFTER_WRITES <= writes_at_kill < N_PAIRS // BATCH_SIZE, "killed too late"
        state_key = "d/r/create/unmapped/state.json"
        state = json.loads(
            (tmp_path / "checkpoints" / state_key).read_text()
            if store == "local"
            else s3.read(bucket, f"state/checkpoints/{state_key}")
        )

        record = BatchCreateAssociationsOperator(**kwargs).execute(ti_context(try_number=2))
        writes = hs.stats.write_requests
        stored = hs.associations("contacts", "companies")
        expected = expectation(hs, shard)

    batches = N_PAIRS // BATCH_SIZE
    resent = writes - batches
    bound = MAX_CONCURRENCY + (1 if store == "local" else MAX_CONCURRENCY)
    print(
        f"\n{store} checkpoint: killed after {writes_at_kill} writes, checkpoint at row {state['rows']} "
        f"({state['rows'] // BATCH_SIZE} batches); {writes} writes in all for {batches} batches: "
        f"{resent} sent again (bound {bound})"
    )
    assert record["resumed"] is True and record["resumedSkipped"] == state["rows"] > 0
    assert record["created"] == N_PAIRS and stored == expected.stored
    assert resent <= bound
    assert s3.keys(bucket, "state/checkpoints") == []
    assert not (tmp_path / "checkpoints").exists() or list((tmp_path / "checkpoints").iterdir()) == []


KEYED_RECORDS = [
    {
        "object_type": "contacts",
        "count": 180,
        "first_id": 301,
        "properties": {"email": "user{n}@example.com"},
    },
    {"object_type": "companies", "count": 40, "first_id": 7001, "properties": {"domain": "co{n}.example"}},
]


@pytest.mark.hubspot_standin(generated_records=KEYED_RECORDS)
def test_verify_all_of_a_load_by_keys_reads_its_key_files_from_s3(hubspot_conn, s3, bucket):
    from airflow.sdk import DAG

    from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

    rows = "".join(f"User{n}@example.com,https://co{n % 40}.example/\n" for n in range(180))
    s3.write(bucket, "in/keys.csv", "email,website\n" + rows + "nobody@example.com,co1.example\n")
    with DAG(
        "s3_keys", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False
    ) as dag:
        create = BatchCreateAssociationsOperator(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            pairs_path=url(bucket, "in/keys.csv"),
            from_id_field="email",
            from_id_property="email",
            to_id_field="website",
            to_id_property="domain",
            association_type_id=279,
            max_failed_ratio=0.01,
            failed_pairs_path=url(bucket, "state/failed.jsonl"),
        )
        HubSpotBatchStatusSensor(
            task_id="wait", batch=create.output, verify="all", poke_interval=0.3, timeout=60
        )
    run = run_dag(dag)
    assert task_states(run) == {"create": "success", "wait": "success"}
    record, summary = task_results(run)["create"], task_results(run)["wait"]
    assert (record["created"], record["failed"]) == (180, 1)
    assert (summary["expected"], summary["confirmed"]) == (180, 180)
    assert record["resolution"]["from"]["keyMap"] == url(bucket, "state/failed.jsonl.from-keys.json")
    assert sorted(s3.keys(bucket, "state")) == [
        "state/failed.jsonl",
        "state/failed.jsonl.from-keys.json",
        "state/failed.jsonl.to-keys.json",
    ]
    # The operator's two contact reads and one domain search; the sensor looked nothing up.
    lookups = sorted(e.endpoint for e in hubspot_conn.requests if e.endpoint.startswith("objects_"))
    assert lookups == ["objects_batch_read", "objects_batch_read", "objects_search"]


def test_ledger_on_s3_is_written_whole_and_reverts_the_load(s3, bucket, hubspot_conn):
    from airflow_hubspot_assoc.ledger import Ledger
    from airflow_hubspot_assoc.operators.revert import RevertAssociationsOperator

    record = BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=[[str(i), str(700 + i)] for i in range(1, 31)],
        batch_size=10,
        checkpoint_path=url(bucket, "state/checkpoints"),
        ledger_path=url(bucket, "ledgers/{run_id}/{map_index}"),
    ).execute(ti_context())
    location = url(bucket, "ledgers/r/-1")
    assert record["ledgerPath"] == location and record["ledgerReads"] == 1
    keys = s3.keys(bucket, "ledgers/r/-1/")
    assert "ledgers/r/-1/before.csv.gz" in keys and "ledgers/r/-1/ledger.json" in keys
    assert any(k.startswith("ledgers/r/-1/changes-") for k in keys)
    assert sum(1 for _ in Ledger(location).entries()) == 30
    assert len(hubspot_conn.associations("contacts", "companies")) == 30

    reverted = RevertAssociationsOperator(task_id="revert", ledger=location).execute({"ti": None})
    assert reverted["removed"] == 30 and reverted["failed"] == 0
    assert hubspot_conn.associations("contacts", "companies") == set()
