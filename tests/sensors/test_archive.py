"""HubSpotBatchStatusSensor on archive records: it waits until the pairs no longer show the removed
types (no association at all when every type was removed), in a DAG after the archive operator, in
the worker and through the trigger."""

from __future__ import annotations

import re

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred
from airflow.sdk import DAG

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.operators.archive import BatchArchiveAssociationsOperator
from airflow_hubspot_assoc.readback.matching import check_pairs
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor
from airflow_hubspot_assoc.triggers.associations import HubSpotBatchStatusTrigger
from tests.helpers import run_dag, task_results, task_states
from tests.sensors.support import PRIMARY, UNLABELED, create, record

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PAIRS = [("1", "101"), ("2", "102"), ("3", "103")]


def archive_record(pairs, types):
    return record(pairs, types=types, operation="archive", archived=len(pairs), created=0)


def sensor(**kwargs) -> HubSpotBatchStatusSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("timeout", 30)
    return HubSpotBatchStatusSensor(**kwargs)


@pytest.mark.parametrize(
    ("archive_kwargs", "left"),
    [
        ({"association_type_id": 1}, {UNLABELED}),
        ({"all_types": True}, set()),
    ],
    ids=["by-type", "all-types"],
)
@pytest.mark.parametrize(
    "version", ["v4", pytest.param("2026-09", marks=pytest.mark.hubspot_conn(api_version="2026-09"))]
)
def test_sensor_confirms_an_archive_in_a_dag(request, hubspot_conn, version, archive_kwargs, left):
    create(hubspot_conn, PAIRS, types=[UNLABELED, PRIMARY])
    with DAG(
        re.sub(r"\W", "_", request.node.name)[:200], schedule=None, start_date=START, catchup=False
    ) as dag:
        archive = BatchArchiveAssociationsOperator(
            task_id="archive",
            from_object_type="contacts",
            to_object_type="companies",
            pairs=[list(p) for p in PAIRS],
            **archive_kwargs,
        )
        sensor(batch=archive.output)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"archive": "success", "wait": "success"}
    result = task_results(dag_run)["wait"]
    assert (result["status"], result["expected"], result["confirmed"]) == ("CONFIRMED", 3, 3)
    assert {(c, t) for _, _, c, t in hubspot_conn.associations("contacts", "companies")} == left


def test_sensor_times_out_while_the_removed_type_is_still_there(hubspot_conn):
    create(hubspot_conn, PAIRS, types=[UNLABELED, PRIMARY])
    with pytest.raises(AirflowSensorTimeout, match=r"still has \[.*HUBSPOT_DEFINED/1"):
        sensor(batch=archive_record(PAIRS, [PRIMARY]), timeout=0.5).execute({})


def test_other_types_left_on_the_pair_do_not_matter(hubspot_conn):
    create(hubspot_conn, PAIRS, types=[UNLABELED])
    assert sensor(batch=archive_record(PAIRS, [PRIMARY])).execute({})["confirmed"] == 3


def test_an_all_types_archive_needs_the_pair_empty(hubspot_conn):
    create(hubspot_conn, PAIRS[:1], types=[PRIMARY])
    with pytest.raises(AirflowSensorTimeout, match="2 of 3 confirmed"):
        sensor(batch=archive_record(PAIRS, []), timeout=0.5).execute({})


def test_deferred_archive_check_hands_absent_to_the_trigger(hubspot_conn):
    create(hubspot_conn, PAIRS, types=[PRIMARY])
    with pytest.raises(TaskDeferred) as caught:
        sensor(batch=archive_record(PAIRS, [PRIMARY]), deferrable=True).execute({})
    trigger = caught.value.trigger
    assert isinstance(trigger, HubSpotBatchStatusTrigger) and trigger.absent is True
    classpath, kwargs = trigger.serialize()
    assert kwargs["absent"] is True
    assert HubSpotBatchStatusTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_check_pairs_for_absence():
    primary = AssociationType(*PRIMARY)
    typed = AssociationPair("1", "101", frozenset({primary}))
    every = AssociationPair("2", "102", frozenset())
    spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]
    both = [*spec, {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]
    gone = check_pairs([typed, every], {"1": [{"toObjectId": "101", "associationTypes": spec}]}, absent=True)
    assert gone.confirmed == [typed, every]
    left = check_pairs(
        [typed, every],
        {
            "1": [{"toObjectId": "101", "associationTypes": both}],
            "2": [{"toObjectId": "102", "associationTypes": spec}],
        },
        absent=True,
    )
    assert left.confirmed == [] and [m.pair for m in left.missing] == [typed, every]
    assert "still has" in left.missing[0].describe()
