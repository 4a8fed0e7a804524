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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc.datasets import (
    DEFAULT_AUTHORITY,
    SCHEME,
    LineageDataset,
    associations_uri,
    authority,
    normalize_uri,
    object_type,
    parse_uri,
    uri_dataset,
)

if TYPE_CHECKING:
    from airflow.sdk import Asset

    from airflow_hubspot_assoc.record import BatchRecord

__all__ = [
    "DEFAULT_AUTHORITY",
    "SCHEME",
    "asset_dataset",
    "associations_uri",
    "authority",
    "convert_asset_to_openlineage",
    "create_asset",
    "describe_outlet_events",
    "hubspot_associations_asset",
    "normalize_uri",
    "parse_uri",
]

log = logging.getLogger(__name__)


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


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any = None) -> Any:
    """The ``to_openlineage_converter`` of the scheme: the asset as the operator's output dataset."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    dataset = asset_dataset(asset.uri)
    if dataset is None:
        raise ValueError(f"Not a HubSpot associations asset: {asset.uri!r}")
    return Dataset(namespace=dataset.namespace, name=dataset.name)


def asset_dataset(uri: str) -> LineageDataset | None:
    """The OpenLineage namespace and name an association URI stands for (None for other URIs)."""
    return uri_dataset(uri)


def describe_outlet_events(outlets: Any, context: Mapping[str, Any], record: BatchRecord) -> int:
    """Attach the load's counts to the asset events of matching outlets; return how many matched.

    Downstream DAGs read them from ``triggering_asset_events`` (``event.extra["created"]``, ...).
    An outlet naming another object pair is left alone and logged: it is probably a typo.
    """
    events = context.get("outlet_events")
    if events is None:
        return 0
    pair = (object_type(record.from_type), object_type(record.to_type))
    summary = {**record.event_extra(), "fromObjectType": pair[0], "toObjectType": pair[1]}
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
