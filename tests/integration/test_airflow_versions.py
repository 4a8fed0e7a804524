"""One load and one sensor run through ``dag.test()`` on every Airflow version the package supports.

``make test`` runs this module in the pinned venv of the newest Airflow and, through ``make
test-oldest``, in the venv of the oldest (``constraints-airflow-3.1.txt``): what moved between the two
(the sensor's imports, how Airflow copies operators) fails here first.
"""

from __future__ import annotations

import copy
import pickle
import re

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.load import LoadStopped
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor
from tests.helpers import run_dag, task_results, task_states

START = pendulum.datetime(2026, 1, 1, tz="UTC")
ROWS = [(1, 101), (2, 102), (3, 103), (4, 101), (5, 105), (6, 106)]
TYPE = ("HUBSPOT_DEFINED", 279)


def installed_airflow() -> str:
    from airflow import __version__

    return __version__


def load_operator(**kwargs) -> BatchCreateAssociationsOperator:
    return BatchCreateAssociationsOperator(
        task_id="create",
        from_object_type="contacts",
        to_object_type="companies",
        association_type_id=TYPE[1],
        batch_size=2,
        **kwargs,
    )


# Longer than Airflow takes to start the next task in dag.test() (about 4 s on 3.1 on a busy machine).
@pytest.mark.hubspot_standin(visibility_delay_s=12.0, missing_records={"companies": ["105"]})
def test_a_load_and_its_sensor_in_one_dag(request, hubspot_conn, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("from_id,to_id\n" + "".join(f"{f},{t}\n" for f, t in ROWS))
    failed = tmp_path / "failed.jsonl"
    with DAG(re.sub(r"\W", "_", request.node.name), schedule=None, start_date=START, catchup=False) as dag:
        create = load_operator(pairs_path=str(pairs), failed_pairs_path=str(failed), max_failed_ratio=0.5)
        HubSpotBatchStatusSensor(task_id="wait", batch=create.output, poke_interval=1, timeout=90)

    dag_run = run_dag(dag)

    print(f"Airflow {installed_airflow()}")
    assert task_states(dag_run) == {"create": "success", "wait": "success"}
    results = task_results(dag_run)
    record = results["create"]
    # Accepted but not yet readable (the stand-in's visibility delay): what the sensor is for.
    assert (record["status"], record["total"], record["created"], record["failed"]) == ("PROCESSING", 6, 5, 1)
    assert [line for line in failed.read_text().splitlines() if '"105"' in line]
    expected = {(str(f), str(t)) for f, t in ROWS if t != 105}
    stored = {
        (f, t) for f, t, *types in hubspot_conn.associations("contacts", "companies") if tuple(types) == TYPE
    }
    assert stored == expected
    # The sensor waited for HubSpot's eventual consistency: its first read saw none of the pairs.
    assert results["wait"]["status"] == "CONFIRMED"
    assert results["wait"]["confirmed"] == results["wait"]["expected"] == 5
    reads = [r for r in hubspot_conn.requests if r.endpoint == "batch_read"]
    assert len(reads) >= 2


def test_the_operator_survives_airflows_copies(request):
    """Airflow deep-copies tasks (``DAG.partial_subset``; every task in 3.0's ``dag.test()``)."""
    with DAG(re.sub(r"\W", "_", request.node.name), schedule=None, start_date=START) as dag:
        load_operator(pairs=[[1, 101]])
    subset = dag.partial_subset("create")
    assert subset.task_dict["create"] is not dag.task_dict["create"]
    copy.deepcopy(dag.task_dict["create"])
    pickle.loads(pickle.dumps(dag.task_dict["create"]))


def test_on_kill_before_execute_sends_nothing(hubspot_conn):
    operator = load_operator(pairs=[list(pair) for pair in ROWS])
    operator.on_kill()
    with pytest.raises(LoadStopped):
        operator.execute({})
    assert not [r for r in hubspot_conn.requests if r.endpoint == "batch_create"]


@pytest.mark.hubspot_standin(visibility_delay_s=12.0)
def test_a_deferrable_sensor_resumes_from_its_trigger(request, hubspot_conn, monkeypatch):
    from airflow_hubspot_assoc.triggers.associations import HubSpotBatchStatusTrigger

    runs: list[HubSpotBatchStatusTrigger] = []
    original = HubSpotBatchStatusTrigger.run

    def run(self):
        runs.append(self)
        return original(self)

    monkeypatch.setattr(HubSpotBatchStatusTrigger, "run", run)
    with DAG(re.sub(r"\W", "_", request.node.name), schedule=None, start_date=START, catchup=False) as dag:
        create = load_operator(pairs=[list(pair) for pair in ROWS])
        HubSpotBatchStatusSensor(
            task_id="wait", batch=create.output, deferrable=True, poke_interval=1, timeout=90
        )

    dag_run = run_dag(dag)

    assert task_states(dag_run) == {"create": "success", "wait": "success"}
    assert task_results(dag_run)["wait"]["status"] == "CONFIRMED"
    assert len(runs) == 1  # dag.test() ran the trigger in line and resumed the sensor with its event
