"""Old home of the rate limiter, kept as re-exports while other branches still import from here.

The limiter now lives in ``airflow_hubspot_assoc.client``: ``window`` (the pure state machine),
``limiter`` (the permit gate), ``peers`` (processes of one app on this host) and ``registry`` (one
limiter per app per process). Import from there in new code.
"""

from __future__ import annotations

from airflow_hubspot_assoc.client.headers import (
    HEADER_DAILY,
    HEADER_DAILY_REMAINING,
    HEADER_INTERVAL,
    HEADER_MAX,
    HEADER_REMAINING,
    WINDOW_BURST_MAX,
)
from airflow_hubspot_assoc.client.limiter import RateLimiter
from airflow_hubspot_assoc.client.registry import limiter_for, reset_limiters
from airflow_hubspot_assoc.client.window import Ticket

__all__ = [
    "HEADER_DAILY",
    "HEADER_DAILY_REMAINING",
    "HEADER_INTERVAL",
    "HEADER_MAX",
    "HEADER_REMAINING",
    "WINDOW_BURST_MAX",
    "RateLimiter",
    "Ticket",
    "limiter_for",
    "reset_limiters",
]
