"""Airflow assets for HubSpot associations, so downstream DAGs can run when a load has finished.

An asset names the associations between two object types of one HubSpot portal::

    hubspot://<portal id>/associations/<from type>/<to type>

for example ``hubspot://12345678/associations/contacts/companies``. Without a portal id the authority
is HubSpot's API host (``hubspot://api.hubapi.com/...``), which is also what the operator's
OpenLineage output names when its connection has no ``portal_id``.

The provider registers ``hubspot`` in its provider info (``asset-uris``) with :func:`normalize_uri`,
so Airflow accepts these URIs and spells each one a single way (``contact``, ``Contacts`` and ``0-1``
all become ``contacts``): a producer and a consumer that write the pair differently still meet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from airflow_hubspot_assoc.api import DEFAULT_HOST, validate_object_type
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.object_types import canonical_object_type

if TYPE_CHECKING:
    from airflow.sdk import Asset

    from airflow_hubspot_assoc.lineage import LineageDataset

log = logging.getLogger(__name__)

SCHEME = "hubspot"
#: The URI authority when no portal id is given: HubSpot's API host.
DEFAULT_AUTHORITY = urlsplit(DEFAULT_HOST).netloc
_PORTAL_ID = re.compile(r"^[0-9]{1,20}$")
# A host name (optionally with a port), for URIs whose authority is an API host rather than a portal.
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$")
_PATH_PREFIX = "associations"


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


def _object_type(value: str) -> str:
    try:
        return canonical_object_type(validate_object_type(value))
    except HubSpotConfigError as err:
        raise ValueError(str(err)) from None


def associations_uri(
    from_type: str, to_type: str, portal: str | int | None = None, *, host: str | None = None
) -> str:
    """The canonical URI of the ``from_type -> to_type`` associations of a portal (see the module)."""
    return (
        f"{SCHEME}://{authority(portal, host)}/{_PATH_PREFIX}/"
        f"{_object_type(from_type)}/{_object_type(to_type)}"
    )


def hubspot_associations_asset(
    from_type: str,
    to_type: str,
    portal: str | int | None = None,
    *,
    name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Asset:
    """An asset for the associations of an object pair, for ``outlets=[...]`` and ``schedule=[...]``.

    :param from_type: the ``from`` object type: a name (``contacts``, ``contact``) or type id (``0-1``)
    :param to_type: the ``to`` object type
    :param portal: the HubSpot portal (hub) id; give it when DAGs load into more than one portal
    :param name: the asset's name in the UI; the URI by default
    :param extra: static extra of the asset
    """
    from airflow.sdk import Asset

    uri = associations_uri(from_type, to_type, portal)
    return Asset(uri=uri, name=name or uri, extra=dict(extra or {}))


def create_asset(
    *,
    from_type: str,
    to_type: str,
    portal: str | int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Asset:
    """The ``factory`` of the ``hubspot`` scheme in provider info (used by hook-level lineage)."""
    return hubspot_associations_asset(from_type, to_type, portal, extra=extra)


def normalize_uri(parts: SplitResult) -> SplitResult:
    """Airflow's URI handler for ``hubspot://``: accept only association URIs, spelled one way.

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
    path = f"/{_PATH_PREFIX}/{_object_type(segments[1])}/{_object_type(segments[2])}"
    return parts._replace(netloc=netloc, path=path)


def parse_uri(uri: str) -> tuple[str, str, str] | None:
    """``(authority, from_type, to_type)`` of a canonical ``hubspot://`` association URI, else None."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != SCHEME:
        return None
    try:
        normalized = normalize_uri(parts)
    except ValueError:
        return None
    _, _, from_type, to_type = normalized.path.split("/")
    return normalized.netloc, from_type, to_type


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any = None) -> Any:
    """The ``to_openlineage_converter`` of the scheme: the asset as the operator's output dataset."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    dataset = asset_dataset(asset.uri)
    if dataset is None:
        raise ValueError(f"Not a HubSpot associations asset: {asset.uri!r}")
    return Dataset(namespace=dataset.namespace, name=dataset.name)


def asset_dataset(uri: str) -> LineageDataset | None:
    """The OpenLineage namespace and name an association URI stands for (None for other URIs)."""
    from airflow_hubspot_assoc.lineage import LineageDataset

    parsed = parse_uri(uri)
    if parsed is None:
        return None
    netloc, from_type, to_type = parsed
    return LineageDataset(f"{SCHEME}://{netloc}", f"{_PATH_PREFIX}/{from_type}/{to_type}")


def describe_outlet_events(
    outlets: Any, context: Mapping[str, Any], from_type: str, to_type: str, record: Mapping[str, Any]
) -> int:
    """Attach the load's counts to the asset events of matching outlets; return how many matched.

    Downstream DAGs read them from ``triggering_asset_events`` (``event.extra["created"]``, ...).
    An outlet naming another object pair is left alone and logged: it is probably a typo.
    """
    events = context.get("outlet_events")
    if events is None:
        return 0
    pair = (_object_type(from_type), _object_type(to_type))
    summary = {
        "status": record.get("status"),
        "total": record.get("total"),
        "created": record.get("created"),
        "failed": record.get("failed"),
        "invalid": record.get("invalid"),
        "dryRun": bool(record.get("dryRun")),
        "fromObjectType": pair[0],
        "toObjectType": pair[1],
    }
    matched = 0
    for outlet in outlets or ():
        uri = getattr(outlet, "uri", None)
        if not isinstance(uri, str):
            continue
        parsed = parse_uri(uri)
        if parsed is None:
            continue
        if parsed[1:] != pair:
            log.warning(
                "Outlet %s names the %s -> %s associations, but this task loads %s -> %s",
                uri,
                parsed[1],
                parsed[2],
                *pair,
            )
            continue
        events[outlet].extra.update(summary)
        matched += 1
    return matched
