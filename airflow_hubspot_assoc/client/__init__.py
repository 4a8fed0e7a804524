"""The client layer under ``HubSpotHook``: everything that talks to HubSpot, free of Airflow.

Modules, lowest first (each imports only those above it, plus ``api`` and ``exceptions``):
``headers``, ``fallback``, ``steering`` -> ``window`` (the pure window state machine) -> ``peers``,
``limiter`` (the permit gate) -> ``registry`` (one limiter per app per process); ``credentials``,
``answers``, ``stats``, ``transport`` -> ``retry`` -> ``calls`` (the sans-I/O call loop and its two
drivers) -> ``reads`` -> ``hubspot`` (the API calls, one label cache) -> ``sender`` (what a load uses).
"""
