"""Which API path names which endpoint, in which API version.

Association paths name two object types (``/crm/v4/associations/{from}/{to}/batch/create``);
objects and properties paths name one (``/crm/v3/objects/{type}/search``). The undated
generation of every API is reported as version ``v4`` (see ``spec.API_VERSIONS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from airflow_hubspot_assoc.testing import spec

_BATCH = re.compile(
    r"^/crm/(?:v4/associations|associations/(?P<ver>\d{4}-\d{2}))/(?P<from>[^/]+)/(?P<to>[^/]+)"
    r"/batch/(?P<op>create|associate/default|read|archive|labels/archive)$"
)
_LABELS = re.compile(r"^/crm/associations/(?P<ver>v4|\d{4}-\d{2})/(?P<from>[^/]+)/(?P<to>[^/]+)/labels$")
_OBJECTS = re.compile(
    r"^/crm/(?:v3/objects|objects/(?P<ver>\d{4}-\d{2}))/(?P<from>[^/]+)/(?P<op>batch/read|search)$"
)
_PROPERTY = re.compile(
    r"^/crm/(?:v3/properties|properties/(?P<ver>\d{4}-\d{2}))/(?P<from>[^/]+)/(?P<name>[^/]+)$"
)
_BATCH_ENDPOINTS = {
    "create": "batch_create",
    "associate/default": "batch_associate_default",
    "read": "batch_read",
    "archive": "batch_archive",
    "labels/archive": "batch_labels_archive",
}
_OBJECT_ENDPOINTS = {"batch/read": "objects_batch_read", "search": "objects_search"}
#: Endpoints that change the portal: they need write scopes and count as write requests.
WRITE_ENDPOINTS = frozenset(
    {"batch_create", "batch_associate_default", "labels_create", "batch_archive", "batch_labels_archive"}
)
#: Endpoints that count as read requests in the stats.
READ_ENDPOINTS = frozenset({"batch_read", "objects_batch_read", "objects_search", "property"})
#: Endpoints about one object type (no ``to`` type in the URL).
SINGLE_TYPE_ENDPOINTS = frozenset({"objects_batch_read", "objects_search", "property"})


@dataclass(frozen=True)
class Route:
    """An API path resolved to its version, endpoint and the raw object types of the URL.

    ``to_raw`` is empty for single-type endpoints; ``name`` is the property name of ``property``.
    """

    version: str
    endpoint: str | None  # None: the path exists but not for this method
    from_raw: str
    to_raw: str
    name: str = ""


def route(method: str, path: str) -> Route | None:
    """Match an API path; None when the stand-in has no such path."""
    found = _associations(method, path) or _objects(method, path)
    if found is None or found.version not in spec.API_VERSIONS:
        return None
    return found


def _associations(method: str, path: str) -> Route | None:
    match = _BATCH.match(path)
    if match:
        endpoint = _BATCH_ENDPOINTS[match["op"]] if method == "POST" else None
        version = match["ver"] or "v4"
    else:
        match = _LABELS.match(path)
        if not match:
            return None
        endpoint = {"GET": "labels", "POST": "labels_create"}.get(method)
        version = match["ver"]
    return Route(version, endpoint, unquote(match["from"]), unquote(match["to"]))


def _objects(method: str, path: str) -> Route | None:
    match = _OBJECTS.match(path)
    if match:
        endpoint = _OBJECT_ENDPOINTS[match["op"]] if method == "POST" else None
        return Route(match["ver"] or "v4", endpoint, unquote(match["from"]), "")
    match = _PROPERTY.match(path)
    if match:
        endpoint = "property" if method == "GET" else None
        return Route(match["ver"] or "v4", endpoint, unquote(match["from"]), "", unquote(match["name"]))
    return None
