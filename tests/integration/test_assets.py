"""The assets example: a successful load records an asset event with its counts, and the consumer DAG
scheduled on that asset is queued (``dag.test()``) or run by a real scheduler (``e2e``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_hubspot_assoc.assets import associations_uri
from tests.helpers import run_dag, task_results, task_states

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "example_hubspot_assets.py"
PRODUCER = "example_hubspot_assets"
CONSUMER = "example_hubspot_assets_consumer"
URI = "hubspot://api.hubapi.com/associations/contacts/companies"


def load_bag():
    """Parse the example file as the DAG processor does and write both DAGs to the database."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=str(EXAMPLE))
    assert bag.import_errors == {}, bag.import_errors
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    return bag


def test_both_dags_follow_the_house_style():
    bag = load_bag()
    assert sorted(bag.dag_ids) == [PRODUCER, CONSUMER]
    producer, consumer = bag.get_dag(PRODUCER), bag.get_dag(CONSUMER)
    for dag in (producer, consumer):
        assert dag.catchup is False and {"example", "hubspot", "assets"} <= set(dag.tags)
        assert dag.doc_md and "hubspot_associations_asset" in dag.doc_md
    assert producer.schedule is None
    assert [a.uri for a in producer.get_task("create_associations").outlets] == [URI]
    assert associations_uri("contacts", "companies") == URI
    assert [a.uri for a in consumer.timetable.asset_condition.objects] == [URI]


def test_a_successful_load_records_the_event_and_queues_the_consumer(hubspot_conn, monkeypatch):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    monkeypatch.setenv("HUBSPOT_EXAMPLE_POKE_INTERVAL", "1")
    bag = load_bag()
    with create_session() as session:  # a paused DAG is not queued
        session.get(DagModel, CONSUMER).is_paused = False
    dag_run = run_dag(bag.get_dag(PRODUCER))
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    assert task_results(dag_run)["create_associations"]["created"] == 50

    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == URI))
        assert asset is not None
        events = session.scalars(
            select(AssetEvent).where(
                AssetEvent.asset_id == asset.id, AssetEvent.source_run_id == dag_run.run_id
            )
        ).all()
        assert len(events) == 1
        event = events[0]
        assert (event.source_dag_id, event.source_task_id) == (PRODUCER, "create_associations")
        assert event.extra == {
            "status": "COMPLETE",
            "total": 50,
            "created": 50,
            "failed": 0,
            "invalid": 0,
            "dryRun": False,
            "fromObjectType": "contacts",
            "toObjectType": "companies",
        }
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id)
        ).all()
        assert CONSUMER in queued


def test_an_outlet_for_another_pair_gets_no_counts(hubspot_conn, caplog):
    import pendulum
    from airflow.sdk import DAG

    from airflow_hubspot_assoc.assets import hubspot_associations_asset
    from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator

    wrong = hubspot_associations_asset("deals", "companies")
    with DAG("assets_wrong_outlet", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        BatchCreateAssociationsOperator(
            task_id="create",
            from_object_type="contacts",
            to_object_type="companies",
            pairs=[["1", "101"]],
            outlets=[wrong],
        )
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"create": "success"}
    assert "names the deals -> companies associations" in caplog.text


@pytest.mark.e2e
@pytest.mark.timeout(420)
def test_a_real_scheduler_runs_the_consumer_after_the_producer(hubspot_standin):
    """Real processes: the producer's asset event makes the scheduler start the consumer."""
    import time

    from tests.integration.airflow_cluster import ClusterError, airflow_cluster

    env = {
        "AIRFLOW_CONN_HUBSPOT_DEFAULT": hubspot_standin.connection_uri(),
        "HUBSPOT_EXAMPLE_POKE_INTERVAL": "1",
    }
    with airflow_cluster(
        dags={EXAMPLE.name: EXAMPLE.read_text()},
        env=env,
        components=("api-server", "scheduler", "dag-processor"),
    ) as cluster:
        cluster.wait_for_dag(PRODUCER)
        cluster.wait_for_dag(CONSUMER)
        cluster.unpause(CONSUMER)
        cluster.unpause(PRODUCER)
        run_id = cluster.trigger(PRODUCER)
        assert cluster.wait_for_run(PRODUCER, run_id) == "success", cluster.diagnostics(PRODUCER, run_id)

        deadline = time.monotonic() + 180
        runs: list = []
        while time.monotonic() < deadline and not runs:
            runs = cluster.api("GET", f"/api/v2/dags/{CONSUMER}/dagRuns")["dag_runs"]
            time.sleep(2)
        if not runs:
            raise ClusterError(f"{CONSUMER} was not started\n{cluster.diagnostics()}")
        (consumer_run,) = runs
        assert consumer_run["run_type"] == "asset_triggered"
        state = cluster.wait_for_run(CONSUMER, consumer_run["dag_run_id"])
        assert state == "success", cluster.diagnostics(CONSUMER, consumer_run["dag_run_id"])
        (summary,) = cluster.xcom(CONSUMER, consumer_run["dag_run_id"], "summarise_new_associations")
        assert summary["sourceDagId"] == PRODUCER and summary["sourceRunId"] == run_id
        assert (summary["status"], summary["total"], summary["created"]) == ("COMPLETE", 50, 50)
    assert len(hubspot_standin.associations("contacts", "companies")) == 50
