"""End to end: a deferrable HubSpotBatchStatusSensor in real Airflow processes waits in the triggerer.

The scheduler, dag-processor, triggerer and api-server run as separate processes (LocalExecutor,
SQLite) against a HubSpot stand-in with a visibility delay, so the sensor's first check in the worker
sees nothing yet, defers, and the triggerer polls until HubSpot shows every association.
"""

from __future__ import annotations

import textwrap
import time

import pytest

from airflow_hubspot_assoc.testing import HubSpotStandIn, StandInConfig
from tests.integration.airflow_cluster import airflow_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

DAG_ID = "e2e_deferrable_sensor"
VISIBILITY_DELAY_S = 12.0

DAG_FILE = textwrap.dedent(
    f'''
    """Create associations over plain HTTP, then wait for them with the deferrable sensor."""

    from __future__ import annotations

    import pendulum
    import requests
    from airflow.sdk import DAG, BaseHook, task

    from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

    PAIRS = [("1", "101"), ("2", "102"), ("3", "103"), ("4", "101")]
    TYPES = [{{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}}]
    INPUTS = [{{"from": {{"id": f}}, "to": {{"id": t}}, "types": TYPES}} for f, t in PAIRS]

    with DAG(
        "{DAG_ID}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["e2e"],
    ):

        @task
        def create():
            conn = BaseHook.get_connection("hubspot_default")
            response = requests.post(
                f"{{conn.host}}/crm/v4/associations/contacts/companies/batch/create",
                json={{"inputs": INPUTS}},
                headers={{"Authorization": f"Bearer {{conn.password}}"}},
                timeout=30,
            )
            response.raise_for_status()
            body = response.json()
            return {{
                "status": body["status"],
                "fromObjectType": "contacts",
                "toObjectType": "companies",
                "hubspotConnId": "hubspot_default",
                "associationTypes": TYPES,
                "total": len(PAIRS),
                "created": len(PAIRS),
                "failed": 0,
                "invalid": 0,
                "errors": [],
                "failedPairsPath": None,
                "dryRun": False,
                "source": {{"kind": "xcom", "description": "4 pairs"}},
                "sample": [{{"from": f, "to": t, "types": TYPES}} for f, t in PAIRS],
            }}

        HubSpotBatchStatusSensor(
            task_id="wait",
            batch=create(),
            deferrable=True,
            poke_interval=2,
            timeout=180,
        )
    '''
)


def test_deferrable_sensor_in_real_airflow_processes():
    started = time.monotonic()
    with (
        HubSpotStandIn(StandInConfig(visibility_delay_s=VISIBILITY_DELAY_S)) as hs,
        airflow_cluster(
            dags={"e2e_deferrable_sensor.py": DAG_FILE},
            env={"AIRFLOW_CONN_HUBSPOT_DEFAULT": hs.connection_uri()},
        ) as cluster,
    ):
        cluster.wait_for_dag(DAG_ID)
        cluster.unpause(DAG_ID)
        run_id = cluster.trigger(DAG_ID)
        state = cluster.wait_for_run(DAG_ID, run_id, timeout=240)

        def context() -> str:
            return f"\nstand-in stats: {hs.stats.to_dict()}\n{cluster.diagnostics(DAG_ID, run_id)}"

        states = cluster.task_states(DAG_ID, run_id)
        assert state == "success", f"run {state}, tasks {states}{context()}"
        assert states == {"create": "success", "wait": "success"}, context()
        events = cluster.audit_events(DAG_ID, run_id, "wait")
        assert "deferred" in events, f"the sensor never deferred: audit events {events}{context()}"
        result = cluster.xcom(DAG_ID, run_id, "wait")
        assert result["status"] == "CONFIRMED", context()
        assert (result["expected"], result["confirmed"]) == (4, 4), context()
        # The worker read once before deferring; the triggerer read until the pairs showed up.
        reads = [r for r in hs.requests if r.endpoint == "batch_read"]
        assert len(reads) >= 2, context()
        task_log = cluster.task_log(DAG_ID, run_id, "wait")
        assert "Deferring" in task_log, context()
        assert "All associations are visible" in task_log, context()
        trigger_log = cluster.trigger_log(DAG_ID, run_id, "wait")
        assert "Poll 1: 0 of 4 confirmed" in trigger_log, context()  # the triggerer ran our trigger
    print(f"e2e deferrable run took {time.monotonic() - started:.0f}s")
