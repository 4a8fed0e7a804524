"""
### Assets: run a downstream DAG whenever contact-to-company associations were loaded

**Use case.** Other teams act on new relationships in HubSpot: a sync to the warehouse, a
territory assignment, a report. Instead of guessing when the load has finished (a time-based
schedule with a safety margin), their DAG is scheduled on the *asset* of the associations, and
Airflow starts it as soon as a load succeeded.

**Flow.**

* `example_hubspot_assets` (this DAG, the producer): `contact_company_pairs` returns the pairs (as
  from a warehouse query), `create_associations` creates them with
  `outlets=[hubspot_associations_asset("contacts", "companies")]`, and `confirm_associations`
  waits until HubSpot shows them. When `create_associations` succeeds, Airflow records an asset
  event; the operator attaches the load's counts to it (`status`, `total`, `created`, `failed`,
  `invalid`, `dryRun`).
* `example_hubspot_assets_consumer` (the consumer, `schedule=[CONTACT_COMPANIES]`): runs once per
  asset event and reads the counts from `triggering_asset_events`, so it can skip work when nothing
  was created.

**The asset.** `hubspot_associations_asset(from_type, to_type, portal=None)` returns an `Asset` with
the URI `hubspot://<portal id>/associations/<from>/<to>` (`hubspot://api.hubapi.com/...` without a
portal id). Object types are spelled one way (`contact`, `Contacts` and `0-1` all become
`contacts`), so producers and consumers that write them differently still match. Pass `portal=` when
your DAGs load into more than one portal. The same name is the operator's OpenLineage output.

**Setup.** The connection `hubspot_default` needs the contacts and companies read and write scopes.
Unpause both DAGs; trigger the producer (it has no schedule of its own).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_hubspot_assoc.assets import hubspot_associations_asset
from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

# Tests and the demo shorten the wait between read-backs; 30 s suits a real portal.
POKE_INTERVAL = float(os.environ.get("HUBSPOT_EXAMPLE_POKE_INTERVAL", "30"))
#: The contacts -> companies associations of the portal behind ``hubspot_default``.
CONTACT_COMPANIES = hubspot_associations_asset("contacts", "companies")

with DAG(
    dag_id="example_hubspot_assets",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "hubspot", "associations", "assets"],
    doc_md=__doc__,
):

    @task
    def contact_company_pairs() -> list[list[int]]:
        """Return [contact id, company id] pairs, as a warehouse query would."""
        return [[4_000 + i, 9_000 + i % 7] for i in range(50)]

    create = BatchCreateAssociationsOperator(
        task_id="create_associations",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=contact_company_pairs(),
        outlets=[CONTACT_COMPANIES],
    )
    HubSpotBatchStatusSensor(
        task_id="confirm_associations",
        batch=create.output,
        poke_interval=POKE_INTERVAL,
        timeout=30 * 60,
    )

with DAG(
    dag_id="example_hubspot_assets_consumer",
    schedule=[CONTACT_COMPANIES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "hubspot", "associations", "assets"],
    doc_md=__doc__,
):

    @task
    def summarise_new_associations(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Return what each triggering load reported: its DAG run and its counts."""
        summaries = []
        for events in (triggering_asset_events or {}).values():
            for event in events:
                summaries.append(
                    {
                        "sourceDagId": event.source_dag_id,
                        "sourceRunId": event.source_run_id,
                        **dict(event.extra or {}),
                    }
                )
        for summary in summaries:
            print(
                f"{summary['sourceDagId']}/{summary['sourceRunId']}: {summary.get('created')} of "
                f"{summary.get('total')} associations created, status {summary.get('status')}"
            )
        return summaries

    summarise_new_associations()
