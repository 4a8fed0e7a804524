"""Extra links from a task to the HubSpot pages of the object types it associated.

Why through XCom: the link needs the portal id, which lives in the connection. ``execute`` already
reads the connection, so it stores the portal id and the (rendered) object types once
(:func:`persist`); at the end of the task Airflow 3 asks each link for its URL and keeps it in XCom,
from where the UI shows it without reading connections or calling anything. Without a
``portal_id`` in the connection's extra there is no link (HubSpot's app URLs need it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from airflow_hubspot_assoc.object_types import object_type_id

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

log = logging.getLogger(__name__)

APP_URL = "https://app.hubspot.com"
#: The XCom key under which ``execute`` stores what the links need.
LINK_XCOM_KEY = "hubspot_link"
_PORTAL_ID = re.compile(r"^[0-9]{1,20}$")


def object_type_url(portal_id: str | int | None, object_type: str, app_url: str = APP_URL) -> str | None:
    """The URL of an object type's record list in a portal, or None if either is unknown.

    Standard objects are addressed by type id (``contacts`` -> ``0-1``), custom objects by their
    ``2-...`` id; a custom object's name (``p_cars``) cannot be resolved without an API call.
    """
    portal = str(portal_id).strip() if portal_id is not None else ""
    if not _PORTAL_ID.match(portal):
        return None
    type_id = object_type_id(object_type)
    if type_id is None:
        return None
    return f"{app_url}/contacts/{portal}/objects/{quote(type_id)}/views/all/list"


def link_payload(portal_id: str | None, from_type: str, to_type: str) -> dict[str, Any]:
    """What :func:`persist` stores: the portal id (None when unknown) and both object types.

    It is stored even without a portal id: Airflow asks for the links after every task, and a missing
    XCom is logged as an error although it only means "no link".
    """
    portal = None if portal_id in (None, "") else str(portal_id)
    return {"portalId": portal, "fromObjectType": str(from_type), "toObjectType": str(to_type)}


def persist(context: Mapping[str, Any], hook: Any, from_type: str, to_type: str) -> None:
    """Store what the links need, from inside ``execute``; never fails the task.

    ``hook.portal_id`` reads the connection (which the load needs anyway). If that fails, the same
    error surfaces from the load's own first use of the hook, with the load's context.
    """
    try:
        payload = link_payload(hook.portal_id, from_type, to_type)
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=LINK_XCOM_KEY, value=payload)
    except Exception:
        log.debug("No HubSpot links for this task", exc_info=True)


class _HubSpotObjectTypeLink(BaseOperatorLink):
    """A link to the record list of one end (``from`` or ``to``) of the task's object pair."""

    end: ClassVar[str]

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL, or ``""`` (no link) when the task stored no portal id."""
        from airflow.sdk.execution_time.xcom import XCom

        payload = XCom.get_value(ti_key=ti_key, key=LINK_XCOM_KEY)
        if not isinstance(payload, Mapping):
            return ""
        return object_type_url(payload.get("portalId"), str(payload.get(self.end) or "")) or ""


class HubSpotFromObjectsLink(_HubSpotObjectTypeLink):
    """The HubSpot page listing the records of the task's ``from`` object type."""

    name = "HubSpot: from records"
    end = "fromObjectType"


class HubSpotToObjectsLink(_HubSpotObjectTypeLink):
    """The HubSpot page listing the records of the task's ``to`` object type."""

    name = "HubSpot: to records"
    end = "toObjectType"
