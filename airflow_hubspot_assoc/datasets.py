"""Names of what a load reads and writes: ``hubspot://`` URIs and OpenLineage datasets. Pure, no I/O.

Both ``assets`` (Airflow's URI handler, asset factory and OpenLineage converter) and ``lineage`` (the
operator's OpenLineage facets) name datasets through this module, so an asset and the operator's
output dataset are always the same thing, and neither module needs the other.

An association dataset is the associations between two object types of one HubSpot portal::

    hubspot://<portal id>/associations/<from type>/<to type>

for example ``hubspot://12345678/associations/contacts/companies``. Without a portal id the authority
is HubSpot's API host (``hubspot://api.hubapi.com/...``). Object types are spelled one way
(``contact``, ``Contacts`` and ``0-1`` all become ``contacts``), so a producer and a consumer that
write the pair differently still meet.

Input datasets follow OpenLineage's naming conventions: ``s3://bucket`` + ``path/part-0.csv`` for
object storage, ``file`` + ``/abs/path`` for local files (a glob stands for its fixed directory), and
``xcom://<dag_id>`` + ``<upstream task_id>`` (``<task_id>/<key>`` for another key) for XCom input.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from airflow_hubspot_assoc.api import DEFAULT_HOST, validate_object_type
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.object_types import canonical_object_type
from airflow_hubspot_assoc.pairs.sources import has_scheme

SCHEME = "hubspot"
#: The URI authority when no portal id is given: HubSpot's API host.
DEFAULT_AUTHORITY = urlsplit(DEFAULT_HOST).netloc
XCOM_RETURN_KEY = "return_value"
_PORTAL_ID = re.compile(r"^[0-9]{1,20}$")
# A host name (optionally with a port), for URIs whose authority is an API host rather than a portal.
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$")
_PATH_PREFIX = "associations"
_GLOB_CHARS = "*?["


@dataclass(frozen=True, order=True)
class LineageDataset:
    """An OpenLineage dataset identity (namespace + name), independent of the provider's classes."""

    namespace: str
    name: str


# -- hubspot:// association URIs --------------------------------------------------------------------
def authority(portal: str | int | None = None, host: str | None = None) -> str:
    """The URI authority for a portal id (preferred) or an API host; HubSpot's API host by default."""
    if portal not in (None, ""):
        text = str(portal).strip()
        if not _PORTAL_ID.match(text):
            raise ValueError(f"A HubSpot portal id is a number, got {portal!r}")
        return text
    if host:
        text = host.strip().lower()
        if not _HOST.match(text):
            raise ValueError(f"Not a host name for a HubSpot asset: {host!r}")
        return text
    return DEFAULT_AUTHORITY


def object_type(value: str) -> str:
    """The one spelling of an object type in URIs and datasets; ``ValueError`` when it is not one."""
    try:
        return canonical_object_type(validate_object_type(value))
    except HubSpotConfigError as err:
        raise ValueError(str(err)) from None


def associations_uri(
    from_type: str, to_type: str, portal: str | int | None = None, *, host: str | None = None
) -> str:
    """The canonical URI of the ``from_type -> to_type`` associations of a portal (see the module)."""
    return (
        f"{SCHEME}://{authority(portal, host)}/{_PATH_PREFIX}/{object_type(from_type)}/{object_type(to_type)}"
    )


def normalize_uri(parts: SplitResult) -> SplitResult:
    """Accept only association URIs, spelled one way (Airflow's URI handler, see ``assets``).

    Airflow has already lower-cased the scheme, dropped the fragment and trailing slashes; a
    ValueError here makes Airflow reject the asset at DAG parse time with this message.
    """
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) != 3 or segments[0] != _PATH_PREFIX:
        raise ValueError(
            f"A {SCHEME}:// asset URI looks like hubspot://<portal id>/associations/<from>/<to>, "
            f"got path {parts.path!r}"
        )
    if parts.query:
        raise ValueError(f"A {SCHEME}:// asset URI takes no query, got {parts.query!r}")
    netloc = parts.netloc.lower()
    if not netloc or "@" in netloc:
        raise ValueError(f"A {SCHEME}:// asset URI needs a portal id or API host, got {parts.netloc!r}")
    try:
        netloc = authority(netloc) if netloc.isdigit() else authority(host=netloc)
    except ValueError as err:
        raise ValueError(f"Invalid {SCHEME}:// asset URI authority: {err}") from None
    path = f"/{_PATH_PREFIX}/{object_type(segments[1])}/{object_type(segments[2])}"
    return parts._replace(netloc=netloc, path=path)


def parse_uri(uri: str) -> tuple[str, str, str] | None:
    """``(authority, from_type, to_type)`` of a ``hubspot://`` association URI, else None."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != SCHEME:
        return None
    try:
        normalized = normalize_uri(parts)
    except ValueError:
        return None
    _, _, from_type, to_type = normalized.path.split("/")
    return normalized.netloc, from_type, to_type


def uri_dataset(uri: str) -> LineageDataset | None:
    """The OpenLineage namespace and name an association URI stands for (None for other URIs)."""
    parsed = parse_uri(uri)
    if parsed is None:
        return None
    netloc, from_type, to_type = parsed
    return LineageDataset(f"{SCHEME}://{netloc}", f"{_PATH_PREFIX}/{from_type}/{to_type}")


def associations_dataset(
    from_type: str, to_type: str, *, portal_id: str | None, base_url: str | None
) -> LineageDataset:
    """The associations of the pair in the portal (or at the API host ``base_url``, without a portal)."""
    host = urlsplit(base_url).netloc if base_url else None
    dataset = uri_dataset(associations_uri(from_type, to_type, portal_id, host=host))
    assert dataset is not None  # associations_uri builds only URIs that parse
    return dataset


# -- inputs ---------------------------------------------------------------------------------------------
def path_dataset(path: str) -> LineageDataset:
    """The dataset of a file, directory or glob: ``scheme://bucket`` + key, or ``file`` + absolute path."""
    text = str(path).strip()
    cut = min((i for i in (text.find(c) for c in _GLOB_CHARS) if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut].rsplit("/", 1)[0] or "/"
    if has_scheme(text):
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return LineageDataset("file", parts.path.rstrip("/") or "/")
        return LineageDataset(f"{scheme}://{parts.netloc}", parts.path.strip("/"))
    return LineageDataset("file", os.path.abspath(text).rstrip("/") or "/")


def xcom_dataset(dag_id: str, task_id: str, key: str = XCOM_RETURN_KEY) -> LineageDataset:
    """The dataset standing for an upstream task's XCom value."""
    name = task_id if key == XCOM_RETURN_KEY else f"{task_id}/{key}"
    return LineageDataset(f"xcom://{dag_id}", name)
