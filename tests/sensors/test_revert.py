"""HubSpotBatchStatusSensor on revert records: the pairs the revert restored must show their types and
the pairs it removed types from must no longer show them, in the worker and through the trigger; and
the revert record's two samples parse strictly and round-trip."""

from __future__ import annotations

import logging
import time

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.readback.matching import check_pairs
from airflow_hubspot_assoc.record import BatchRecord
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor
from airflow_hubspot_assoc.triggers.associations import HubSpotBatchStatusTrigger
from tests.sensors.support import PRIMARY, UNLABELED, create, specs
from tests.triggers.test_associations import run_trigger

RESTORED = AssociationPair("2", "102", frozenset({AssociationType(*PRIMARY)}))
REMOVED = AssociationPair("1", "101", frozenset({AssociationType(*PRIMARY)}))
EMPTIED = AssociationPair("3", "103", frozenset())  # the pair had nothing before: none may be left


def revert_record(**overrides) -> dict:
    value = BatchRecord(
        status="COMPLETE",
        from_type="contacts",
        to_type="companies",
        conn_id="hubspot_default",
        operation="revert",
        total=3,
        removed=2,
        restored=1,
        sample=(RESTORED,),
        removed_sample=(REMOVED, EMPTIED),
        source={"kind": "ledger", "path": "/ledgers/run"},
    ).to_xcom()
    value.update(overrides)
    return value


def remove_primary(hs, pair: tuple[str, str]) -> None:
    """Archive Primary from a pair over HTTP (``batch/labels/archive``), as the revert would."""
    response = requests.post(
        f"{hs.url}/crm/v4/associations/contacts/companies/batch/labels/archive",
        json={"inputs": [{"from": {"id": pair[0]}, "to": {"id": pair[1]}, "types": specs([PRIMARY])}]},
        headers={"Authorization": f"Bearer {hs.token}"},
        timeout=30,
    )
    assert response.status_code == 204, response.text


def sensor(**kwargs) -> HubSpotBatchStatusSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("timeout", 30)
    return HubSpotBatchStatusSensor(**kwargs)


def test_a_revert_record_round_trips_and_parses_strictly():
    raw = revert_record()
    assert raw["removedSample"] == [
        {"from": "1", "to": "101", "types": specs([PRIMARY])},
        {"from": "3", "to": "103", "types": []},
    ]
    parsed = BatchRecord.from_xcom(raw)
    assert parsed.removed_sample == (REMOVED, EMPTIED) and parsed.sample == (RESTORED,)
    assert parsed.to_xcom() == raw
    # A record without it (older reverts, every create and archive) has no key and parses as before.
    assert "removedSample" not in BatchRecord.from_xcom(revert_record(removedSample=None)).to_xcom()
    with pytest.raises(ValueError, match="removedSample belongs to a revert or sync"):
        BatchRecord.from_xcom(revert_record(operation="archive"))
    with pytest.raises(ValueError, match="removedSample items need 'types'"):
        BatchRecord.from_xcom(revert_record(removedSample=[{"from": "1", "to": "101"}]))
    with pytest.raises(ValueError, match="removedSample must be a list"):
        BatchRecord.from_xcom(revert_record(removedSample={"from": "1"}))
    with pytest.raises(ValueError, match="sample holds at most 100"):
        BatchRecord.from_xcom(revert_record(sample=[RESTORED.as_dict()] * 99))
    assert BatchRecord.from_xcom(raw).summary().startswith("COMPLETE: 3 pairs read, 3 reverted,")


def test_check_pairs_judges_a_revert_sample_per_pair():
    read = {
        "1": [{"toObjectId": "101", "associationTypes": specs([UNLABELED])}],
        "2": [{"toObjectId": "102", "associationTypes": specs([UNLABELED, PRIMARY])}],
    }
    result = check_pairs([RESTORED, REMOVED, EMPTIED], read, absent_pairs={REMOVED, EMPTIED})
    assert result.confirmed == [RESTORED, REMOVED, EMPTIED]
    read["3"] = [{"toObjectId": "103", "associationTypes": specs([UNLABELED])}]
    read["2"] = [{"toObjectId": "102", "associationTypes": specs([UNLABELED])}]
    result = check_pairs([RESTORED, REMOVED, EMPTIED], read, absent_pairs={REMOVED, EMPTIED})
    assert [(m.pair, m.absent) for m in result.missing] == [(RESTORED, False), (EMPTIED, True)]


def test_the_sensor_confirms_a_revert_record_in_the_worker(hubspot_conn):
    create(hubspot_conn, [RESTORED.key, REMOVED.key], types=[UNLABELED, PRIMARY])
    with pytest.raises(AirflowSensorTimeout, match=r"1 -> 101 .*still has \[.*HUBSPOT_DEFINED/1"):
        sensor(batch=revert_record(), timeout=0.5).execute({})
    # The removal done: Primary gone from 1 -> 101 (its unlabeled one may stay), 3 -> 103 never
    # associated, 2 -> 102 restored.
    remove_primary(hubspot_conn, REMOVED.key)
    result = sensor(batch=revert_record()).execute({})
    assert (result["status"], result["expected"], result["confirmed"]) == ("CONFIRMED", 3, 3)
    # The samples hold every pair the revert wrote (3 of 3): verify="all" reads them back too.
    result = sensor(batch=revert_record(), verify="all").execute({})
    assert (result["status"], result["expected"], result["confirmed"]) == ("CONFIRMED", 3, 3)
    with pytest.raises(HubSpotConfigError, match="cannot read the batch record's source"):
        sensor(batch=revert_record(removed=500), verify="all").execute({})


def test_a_deferred_revert_check_hands_the_pairs_to_be_gone_to_the_trigger(hubspot_conn):
    create(hubspot_conn, [RESTORED.key, REMOVED.key], types=[UNLABELED, PRIMARY])
    with pytest.raises(TaskDeferred) as caught:
        sensor(batch=revert_record(), deferrable=True).execute({})
    trigger = caught.value.trigger
    assert isinstance(trigger, HubSpotBatchStatusTrigger) and trigger.absent is False
    classpath, kwargs = trigger.serialize()
    # Only 1 -> 101 is still missing (Primary still there); it is to be gone, not visible.
    assert kwargs["pairs"] == [["1", "101", 0]] and kwargs["absent_rows"] == [0]
    assert HubSpotBatchStatusTrigger(**kwargs).serialize() == (classpath, kwargs)
    kwargs["deadline"] = time.time() + 0.6
    (event,) = run_trigger(HubSpotBatchStatusTrigger(**kwargs))
    assert event["status"] == "timeout" and "still has" in event["message"]
    # Once HubSpot no longer shows Primary on 1 -> 101, the trigger confirms it.
    remove_primary(hubspot_conn, REMOVED.key)
    kwargs["deadline"] = time.time() + 30
    (event,) = run_trigger(HubSpotBatchStatusTrigger(**kwargs))
    assert event["status"] == "success" and event["confirmed"] == 3


def test_a_revert_that_changed_nothing_says_so_in_words(hubspot_conn, caplog, capfd):
    empty = revert_record(removed=0, restored=0, total=0, sample=[], removedSample=[])
    with caplog.at_level(logging.INFO):
        assert sensor(batch=empty).execute({})["expected"] == 0
    text = caplog.text + capfd.readouterr().out
    assert "The batch reverted no associations" in text
    assert "revertd" not in text
