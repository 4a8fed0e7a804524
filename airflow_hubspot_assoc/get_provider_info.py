"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow 3.3 builds the connection form from ``conn-fields`` (extra fields) and ``ui-field-behaviour``
(relabelled, hidden and placeholder standard fields), so no Flask widgets are needed.
"""

from __future__ import annotations

from typing import Any

from airflow_hubspot_assoc import __version__

_NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its modules and the ``hubspot`` connection type with its form."""
    integration = "HubSpot"
    return {
        "package-name": "airflow-hubspot-assoc",
        "name": "HubSpot associations",
        "description": "Load relationships (associations) between HubSpot CRM records at scale.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://developers.hubspot.com/docs/api/crm/associations",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": integration, "python-modules": ["airflow_hubspot_assoc.hooks.hubspot"]}
        ],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": [
                    "airflow_hubspot_assoc.operators.associations",
                    "airflow_hubspot_assoc.operators.archive",
                    "airflow_hubspot_assoc.operators.sync",
                    "airflow_hubspot_assoc.operators.revert",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_hubspot_assoc.sensors.associations"],
            }
        ],
        "triggers": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_hubspot_assoc.triggers.associations"],
            }
        ],
        "extra-links": [
            "airflow_hubspot_assoc.links.HubSpotFromObjectsLink",
            "airflow_hubspot_assoc.links.HubSpotToObjectsLink",
        ],
        "asset-uris": [
            {
                "schemes": ["hubspot"],
                "handler": "airflow_hubspot_assoc.assets.normalize_uri",
                "factory": "airflow_hubspot_assoc.assets.create_asset",
                "to_openlineage_converter": "airflow_hubspot_assoc.assets.convert_asset_to_openlineage",
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_hubspot_assoc.hooks.hubspot.HubSpotHook",
                "hook-name": "HubSpot",
                "connection-type": "hubspot",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "extra"],
                    "relabeling": {
                        "password": "Private app access token",
                        "host": "API host",
                        "port": "Port (443 for HubSpot)",
                    },
                    "placeholders": {
                        "host": "https://api.hubapi.com",
                        # Airflow 3.3.2's Test button sends port 0 for a connection saved without one,
                        # and the api-server then refuses the test (apache/airflow#73298).
                        "port": "443 (fill it in: the Test button needs it)",
                        "password": "pat-na1-... (leave empty when using OAuth)",
                    },
                },
                "conn-fields": {
                    "api_version": {
                        "label": "API version",
                        "description": "v4 (ends 2027-03-30) or a dated version such as 2026-03 or 2026-09.",
                        # ``examples`` gives the field a placeholder and a list to pick from in the UI.
                        "schema": {
                            "type": ["string", "null"],
                            "default": "v4",
                            "examples": ["v4", "2026-03", "2026-09"],
                        },
                    },
                    "client_id": {
                        "label": "OAuth client ID",
                        "description": "For OAuth apps (leave empty for a private-app token).",
                        "schema": _NULLABLE_STRING,
                    },
                    "client_secret": {
                        "label": "OAuth client secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "refresh_token": {
                        "label": "OAuth refresh token",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "timeout": {
                        "label": "Read timeout (seconds)",
                        "description": "Per-request read timeout; the connect timeout is 10 s.",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    "portal_id": {
                        "label": "Portal (hub) ID",
                        "description": "Optional; names the portal in task links, assets and lineage.",
                        "schema": _NULLABLE_STRING,
                    },
                },
            }
        ],
    }
