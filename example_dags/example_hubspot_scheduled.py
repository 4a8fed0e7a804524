"""
### A daily, production-shaped load: retries, a pool for the HubSpot app, a deferrable sensor

**Use case.** Every night a warehouse job writes the day's new contact-to-company relationships to
a dated partition (`<export_root>/dt=YYYY-MM-DD/`). This DAG runs once a day after it and makes
HubSpot show them.

**Flow.**

1. `daily_export` returns the day's partition (`dt={{ ds }}`). In production this is where your
   unload runs or a sensor waits for the partition; here it writes a small made-up one when missing.
2. `create_associations` loads the partition. Failed pairs go to `_failed.jsonl` in the partition.
3. `confirm_associations` waits, deferrable, until HubSpot shows the created pairs: the first check
   runs in the worker, and if pairs are still missing it hands them to the triggerer and frees the
   worker slot (and its pool slot) while it waits.

**Retries.** The operator already retries what HubSpot asks to be retried (429, 5xx, timeouts) inside
the task, within a budget. Task-level `retries=3` with `retry_delay=5 min` (doubling, at most
30 min) cover longer outages. Re-running a load is safe: creating an association that exists
already changes nothing in HubSpot.

**Pool.** HubSpot's rate limit belongs to the app (the private-app token or OAuth app), not to a
task. Every task that uses the app runs in the Airflow pool `hubspot_app`, so the number of loads
running at once stays bounded whatever the number of workers. Create it once:

```bash
airflow pools set hubspot_app 4 "HubSpot app: tasks that call the HubSpot API"
```

Four slots with the operator's default of 8 requests in flight each keep well inside even the
lowest tier (100 requests per 10 s); the operators also slow down when HubSpot's rate-limit headers
say the window is nearly used.

**Params.** `export_root`: where the dated partitions are (default: the environment variable
`HUBSPOT_EXAMPLE_DAILY_ROOT`, else the system's temporary directory).
"""

from __future__ import annotations

import csv
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

DEFAULT_EXPORT_ROOT = os.environ.get("HUBSPOT_EXAMPLE_DAILY_ROOT") or str(
    Path(tempfile.gettempdir()) / "hubspot_example_daily"
)
# Tests and the demo shorten the wait between read-backs; 5 minutes suits a nightly load.
POKE_INTERVAL = float(os.environ.get("HUBSPOT_EXAMPLE_POKE_INTERVAL", "300"))
HUBSPOT_POOL = "hubspot_app"

with DAG(
    dag_id="example_hubspot_scheduled",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    },
    tags=["example", "hubspot", "associations", "scheduled"],
    doc_md=__doc__,
    params={
        "export_root": Param(
            DEFAULT_EXPORT_ROOT,
            type="string",
            minLength=1,
            description="Folder holding one dt=YYYY-MM-DD partition per day.",
        ),
    },
) as dag:

    @task
    def daily_export(export_root: str, day: str) -> str:
        """Return the day's partition; write a made-up one when it is missing (stands in for an unload)."""
        partition = Path(export_root) / f"dt={day}"
        if not partition.exists():
            partition.mkdir(parents=True)
            seed = int(day.replace("-", ""))
            with (partition / "contact_company.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["from_id", "to_id"])
                for i in range(150):
                    writer.writerow([seed % 100_000 * 1_000 + i, 90_000 + i % 30])
        return str(partition)

    create = BatchCreateAssociationsOperator(
        task_id="create_associations",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=daily_export(export_root="{{ params.export_root }}", day="{{ ds }}"),
        failed_pairs_path="{{ params.export_root }}/dt={{ ds }}/_failed.jsonl",
        max_failed_ratio=0.01,
        pool=HUBSPOT_POOL,
        execution_timeout=timedelta(hours=2),
    )

    HubSpotBatchStatusSensor(
        task_id="confirm_associations",
        batch=create.output,
        verify="all",
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=6 * 60 * 60,
        pool=HUBSPOT_POOL,
    )
