"""Colours shared by the package's operators and sensors in the Airflow UI."""

from __future__ import annotations

#: HubSpot's orange, used as ``ui_color`` by the operator and the sensor so they read as one family.
HUBSPOT_UI_COLOR = "#ff7a59"
