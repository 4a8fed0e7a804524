"""Apache Airflow provider that loads relationships (associations) into HubSpot."""

from __future__ import annotations

__version__ = "0.1.0"
