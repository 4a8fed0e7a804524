"""Performance benchmarks of the provider against the HubSpot stand-in (``python -m benchmarks.run``)."""

from __future__ import annotations
