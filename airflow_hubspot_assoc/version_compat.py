"""What differs between the supported Airflow versions and ``airflow.providers.common.compat`` lacks.

Everything else that moved between Airflow 3.1 and 3.3 is imported from
``airflow.providers.common.compat.sdk``.
"""

from __future__ import annotations


async def amask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's secrets masker from async code (the triggerer's event loop)."""
    from airflow.sdk import log

    masker = getattr(log, "amask_secret", None)
    if masker is None:
        # Airflow 3.1 has only the sync API; its own async connection lookup calls it in the loop too.
        log.mask_secret(secret)
    else:
        # Later versions: the sync call would wait on the supervisor from inside the loop.
        await masker(secret)
