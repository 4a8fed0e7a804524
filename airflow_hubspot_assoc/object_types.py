"""HubSpot's CRM object types by name and by type id, so that names are stable everywhere.

Assets, OpenLineage datasets and links must name the same object type the same way whether a DAG
says ``contacts``, ``contact`` or ``0-1``: this module maps every spelling HubSpot accepts for a
standard object to one canonical name (the plural API name) and to its object type id. Custom
objects (``2-1234567``) and fully qualified names (``p_cars``) pass through unchanged. Pure, no I/O.
"""

from __future__ import annotations

import re

#: Standard objects: API name -> object type id (HubSpot's "Object type IDs" table).
STANDARD_OBJECT_TYPE_IDS: dict[str, str] = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tickets": "0-5",
    "products": "0-7",
    "line_items": "0-8",
    "quotes": "0-14",
    "communications": "0-18",
    "feedback_submissions": "0-19",
    "tasks": "0-27",
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
    "emails": "0-49",
    "invoices": "0-53",
    "marketing_events": "0-54",
    "subscriptions": "0-69",
    "goals": "0-74",
    "discounts": "0-84",
    "fees": "0-85",
    "taxes": "0-86",
    "payments": "0-101",
    "users": "0-115",
    "postal_mail": "0-116",
    "orders": "0-123",
    "leads": "0-136",
    "carts": "0-142",
    "services": "0-162",
    "courses": "0-410",
    "listings": "0-420",
    "appointments": "0-421",
    "projects": "0-970",
}

_NAMES_BY_ID = {type_id: name for name, type_id in STANDARD_OBJECT_TYPE_IDS.items()}
_TYPE_ID = re.compile(r"^[0-9]+-[0-9]+$")


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("xes"):
        return name[:-2]
    return name[:-1] if name.endswith("s") else name


# HubSpot also accepts the singular forms ("contact", "line_item") in API paths.
_ALIASES: dict[str, str] = {
    **{_singular(name): name for name in STANDARD_OBJECT_TYPE_IDS},
    **{name: name for name in STANDARD_OBJECT_TYPE_IDS},
}


def canonical_object_type(value: str) -> str:
    """The one name used for an object type in asset URIs and lineage: ``contacts`` for ``0-1``.

    Standard objects become their plural API name (case-insensitively); type ids of custom objects
    and any other name are returned as given (stripped).
    """
    text = str(value).strip()
    lowered = text.lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    return _NAMES_BY_ID.get(text, text)


def object_type_id(value: str) -> str | None:
    """The object type id (``0-1``, ``2-1234567``) HubSpot's web app uses, or None if unknown.

    Names of custom objects (``p_cars``) need an API call to resolve, so they give None.
    """
    canonical = canonical_object_type(value)
    if canonical in STANDARD_OBJECT_TYPE_IDS:
        return STANDARD_OBJECT_TYPE_IDS[canonical]
    return canonical if _TYPE_ID.match(canonical) else None
