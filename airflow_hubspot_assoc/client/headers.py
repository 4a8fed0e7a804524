"""HubSpot's rate-limit headers: their names, and reading them leniently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER_MAX = "X-HubSpot-RateLimit-Max"
HEADER_REMAINING = "X-HubSpot-RateLimit-Remaining"
HEADER_INTERVAL = "X-HubSpot-RateLimit-Interval-Milliseconds"
HEADER_DAILY = "X-HubSpot-RateLimit-Daily"
HEADER_DAILY_REMAINING = "X-HubSpot-RateLimit-Daily-Remaining"

#: HubSpot's largest rolling window (the API add-on): the most requests worth having in flight.
WINDOW_BURST_MAX = 250


def header_int(headers: Mapping[str, Any], name: str) -> int | None:
    """Read an integer header leniently (missing or malformed means unknown)."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None
