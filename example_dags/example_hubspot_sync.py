"""
### A nightly sync: send only the changes, remove what left the table, review Monday's plan

**Use case.** The warehouse holds the whole contact-to-company relationship table, and HubSpot should
show exactly that table for the "Primary" association type. Re-sending the whole table every night
spends the app's request budget on pairs that did not change, and never removes pairs that left it.
This DAG sends only the difference since the last run (the state is kept under `state_path`).

**Flow.**

1. `desired_state` returns today's full export (`dt={{ ds }}`). In production this is your unload;
   here it writes a made-up one when missing: the same 200 pairs every day, 10 of them replaced by
   new ones each day.
2. `plan_or_sync` picks the path of the day. On Mondays, `plan_changes` computes the changes and
   writes a plan under `state_path` without sending anything (`dry_run=True`; the record's `planned`
   and `planPath` say what it would do), and `apply_plan` applies exactly that plan: it is refused
   before any write if the state moved on since the plan was made. In a real DAG a review (an
   approval task, a human) sits between the two. On the other days, `sync_changes` diffs and applies
   in one go.
3. `mode="mirror"` also removes the "Primary" associations of pairs that left the table (never other
   types). The removal guard `max_removal_ratio=0.1` fails the task before any write if more than 10%
   of the pairs would go, which is how a truncated export shows itself.
4. `confirm_sync` / `confirm_plan` wait until HubSpot shows the created pairs.

**Cost.** A day without changes sends no write at all; 10 changed pairs send one create request and
one removal request. The first run creates everything.

**Params.** `export_root`: where the daily exports are; `state_path`: where the sync keeps its
snapshot, plans and history (local or object storage, e.g. `s3://aws_default@bucket/hubspot/sync`).
"""

from __future__ import annotations

import csv
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_hubspot_assoc.operators.sync import SyncAssociationsOperator
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

DEFAULT_ROOT = os.environ.get("HUBSPOT_EXAMPLE_SYNC_ROOT") or str(
    Path(tempfile.gettempdir()) / "hubspot_example_sync"
)
# Tests and the demo shorten the wait between read-backs; 5 minutes suits a nightly load.
POKE_INTERVAL = float(os.environ.get("HUBSPOT_EXAMPLE_POKE_INTERVAL", "300"))
PRIMARY = 1  # contacts -> companies: HubSpot's labelled "Primary" type

with DAG(
    dag_id="example_hubspot_sync",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one sync per state_path at a time (a second one would fail on the lease)
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["example", "hubspot", "associations", "sync"],
    doc_md=__doc__,
    params={
        "export_root": Param(DEFAULT_ROOT, type="string", minLength=1, description="Daily full exports."),
        "state_path": Param(
            f"{DEFAULT_ROOT}/_state",
            type="string",
            minLength=1,
            description="Where the sync keeps its state.",
        ),
    },
) as dag:

    @task
    def desired_state(export_root: str, day: str) -> str:
        """Return today's full export; write a made-up one when missing (stands in for an unload)."""
        path = Path(export_root) / f"dt={day}" / "contact_company.csv"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shift = pendulum.parse(day).day_of_year * 10  # 10 pairs replaced per day
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["from_id", "to_id"])
                for i in range(shift, shift + 200):
                    writer.writerow([1_000 + i, 90_000 + i % 40])
        return str(path)

    @task.branch
    def plan_or_sync(day: str) -> str:
        """Mondays: plan, then apply the plan; other days: sync directly."""
        return "plan_changes" if pendulum.parse(day).day_of_week == pendulum.MONDAY else "sync_changes"

    export = desired_state(export_root="{{ params.export_root }}", day="{{ ds }}")
    common = {
        "from_object_type": "contacts",
        "to_object_type": "companies",
        "association_type_id": PRIMARY,
        "state_path": "{{ params.state_path }}",
        "mode": "mirror",
        "max_removal_ratio": 0.1,
        "max_failed_ratio": 0.01,
    }
    sync = SyncAssociationsOperator(task_id="sync_changes", pairs_path=export, **common)
    plan = SyncAssociationsOperator(task_id="plan_changes", pairs_path=export, dry_run=True, **common)
    apply = SyncAssociationsOperator(
        task_id="apply_plan", plan_path="{{ ti.xcom_pull(task_ids='plan_changes')['planPath'] }}", **common
    )
    export >> plan_or_sync(day="{{ ds }}") >> [sync, plan]
    plan >> apply

    for name, source in (("confirm_sync", sync), ("confirm_plan", apply)):
        HubSpotBatchStatusSensor(task_id=name, batch=source.output, poke_interval=POKE_INTERVAL, timeout=3600)
