"""Extra links: the URLs they build, and what a real run stores for the UI (which reads only XCom)."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_hubspot_assoc.get_provider_info import get_provider_info
from airflow_hubspot_assoc.links import (
    LINK_XCOM_KEY,
    HubSpotFromObjectsLink,
    HubSpotToObjectsLink,
    link_payload,
    object_type_url,
)
from airflow_hubspot_assoc.object_types import canonical_object_type, object_type_id
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from tests.helpers import dag_id, run_dag, task_states

PORTAL = "12345678"
LIST = "https://app.hubspot.com/contacts/12345678/objects/{}/views/all/list"


@pytest.mark.parametrize(
    ("object_type", "type_id"),
    [
        ("contacts", "0-1"),
        ("contact", "0-1"),
        ("Companies", "0-2"),
        ("deals", "0-3"),
        ("tickets", "0-5"),
        ("line_items", "0-8"),
        ("line_item", "0-8"),
        ("taxes", "0-86"),
        ("tax", "0-86"),
        ("appointments", "0-421"),
        ("0-1", "0-1"),
        ("0-49", "0-49"),
        ("2-1234567", "2-1234567"),
    ],
)
def test_object_type_ids(object_type, type_id):
    assert object_type_id(object_type) == type_id
    assert object_type_url(PORTAL, object_type) == LIST.format(type_id)


def test_canonical_names_for_assets_and_lineage():
    assert [canonical_object_type(t) for t in ("contact", "CONTACTS", "0-1", " contacts ")] == [
        "contacts"
    ] * 4
    assert canonical_object_type("company") == "companies"
    assert canonical_object_type("2-123") == "2-123"
    assert canonical_object_type("p_cars") == "p_cars"


@pytest.mark.parametrize(
    ("portal", "object_type"),
    [
        (None, "contacts"),
        ("", "contacts"),
        ("12a", "contacts"),
        ("1/../evil", "contacts"),
        (PORTAL, "p_cars"),  # a custom object's name needs an API call to find its id
        (PORTAL, "unknown_things"),
        (PORTAL, ""),
    ],
)
def test_no_link_without_a_portal_id_or_a_known_type_id(portal, object_type):
    assert object_type_url(portal, object_type) is None


def test_integer_portal_ids_work():
    assert object_type_url(12345678, "deals") == LIST.format("0-3")


def test_payload_is_stored_even_without_a_portal_id():
    # Airflow logs a missing XCom as an error after every task, so "no portal" is stored too.
    assert link_payload(None, "contacts", "companies") == {
        "portalId": None,
        "fromObjectType": "contacts",
        "toObjectType": "companies",
    }
    assert link_payload(PORTAL, "contacts", "companies") == {
        "portalId": PORTAL,
        "fromObjectType": "contacts",
        "toObjectType": "companies",
    }


def test_links_are_registered_and_attached():
    info = get_provider_info()
    assert info["extra-links"] == [
        "airflow_hubspot_assoc.links.HubSpotFromObjectsLink",
        "airflow_hubspot_assoc.links.HubSpotToObjectsLink",
    ]
    classes = {type(link) for link in BatchCreateAssociationsOperator.operator_extra_links}
    assert classes == {HubSpotFromObjectsLink, HubSpotToObjectsLink}
    assert HubSpotFromObjectsLink().name != HubSpotToObjectsLink().name


def _links_after_run(request, from_type: str, to_type: str) -> tuple[str, dict[str, str | None], object]:
    """Run the operator in a real DAG; return its state, the links as the api-server reads them, and
    the stored payload."""
    from airflow.models.serialized_dag import SerializedDagModel

    name = dag_id(request)
    with DAG(name, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        BatchCreateAssociationsOperator(
            task_id="create",
            from_object_type=from_type,
            to_object_type=to_type,
            pairs=[["1", "101"], ["2", "102"]],
        )
    dag_run = run_dag(dag)
    state = task_states(dag_run)["create"]
    (ti,) = dag_run.get_task_instances()
    # What GET .../taskInstances/{task_id}/links does: the serialized task answers from XCom.
    task = SerializedDagModel.get_dag(name).get_task("create")
    links = {name: task.get_extra_links(ti, name) or None for name in task.extra_links}
    return state, links, ti.xcom_pull(task_ids="create", key=LINK_XCOM_KEY)


@pytest.mark.hubspot_conn(portal_id=PORTAL)
def test_a_run_stores_both_links_when_the_connection_names_the_portal(hubspot_conn, request):
    state, links, payload = _links_after_run(request, "contacts", "deals")
    assert state == "success"
    assert payload == {"portalId": PORTAL, "fromObjectType": "contacts", "toObjectType": "deals"}
    assert links == {
        HubSpotFromObjectsLink.name: LIST.format("0-1"),
        HubSpotToObjectsLink.name: LIST.format("0-3"),
    }


@pytest.mark.hubspot_conn(portal_id=PORTAL)
def test_custom_object_ids_pass_through_and_names_give_no_link(hubspot_conn, request):
    _, links, _ = _links_after_run(request, "2-7654321", "p_cars")
    assert links == {HubSpotFromObjectsLink.name: LIST.format("2-7654321"), HubSpotToObjectsLink.name: None}


def test_no_links_without_a_portal_id(hubspot_conn, request):
    state, links, payload = _links_after_run(request, "contacts", "companies")
    assert state == "success"
    assert payload == {"portalId": None, "fromObjectType": "contacts", "toObjectType": "companies"}
    assert not any(links.values()), links
