"""
### Mirror warehouse relationships into HubSpot through XCom

**Use case.** A query in your warehouse knows which contact works for which company (say, from
billing or product data) and HubSpot should show the same relationship. The result is small enough
to pass through XCom (up to some tens of thousands of pairs; use files beyond that, see
`example_hubspot_files`).

**Flow.**

1. `query_warehouse` returns the pairs as a list of `{"from_id": ..., "to_id": ...}` rows. Here it
   makes them up; replace it with your query (a `SQLExecuteQueryOperator`, a hook call, ...).
   Ids are HubSpot record ids: a contact id and a company id.
2. `create_associations` (`BatchCreateAssociationsOperator`) validates every pair, then creates the
   associations in batches of 100, paced by HubSpot's rate limit. It creates HubSpot's unlabeled
   contact-to-company association (`HUBSPOT_DEFINED` type 279) and returns a compact batch record
   (counts, errors, a sample of created pairs) to XCom.
3. `confirm_associations` (`HubSpotBatchStatusSensor`) takes that record (`create.output`) and reads
   the sample of created pairs back until HubSpot shows them. `verify="sample"` because a list from
   XCom cannot be read again in full; use a file and `verify="all"` to confirm every pair.

**Connection.** `hubspot_default` (private-app token with the scopes `crm.objects.contacts.write`
and `crm.objects.companies.write`, plus the `.read` ones for the sensor).

**Params.** `rows`: how many made-up pairs the stand-in query returns.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

# Tests and the demo shorten the wait between read-backs; 30 s suits a real portal.
POKE_INTERVAL = float(os.environ.get("HUBSPOT_EXAMPLE_POKE_INTERVAL", "30"))
CONTACT_TO_COMPANY_UNLABELED = 279


@dag(
    dag_id="example_hubspot_xcom",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "hubspot", "associations"],
    doc_md=__doc__,
    params={
        "rows": Param(500, type="integer", minimum=1, maximum=20_000, description="Pairs the query returns."),
    },
)
def example_hubspot_xcom() -> None:
    """Query pairs, create the associations, confirm them."""

    @task
    def query_warehouse(rows: Any) -> list[dict[str, str]]:
        """Return (contact id, company id) rows, as a warehouse query would; made up here."""
        count = int(rows)
        return [{"from_id": str(1_000 + i), "to_id": str(5_000 + i % 50)} for i in range(count)]

    pairs = query_warehouse(rows="{{ params.rows }}")

    create = BatchCreateAssociationsOperator(
        task_id="create_associations",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=pairs,
        association_type_id=CONTACT_TO_COMPANY_UNLABELED,
    )

    HubSpotBatchStatusSensor(
        task_id="confirm_associations",
        batch=create.output,
        verify="sample",
        poke_interval=POKE_INTERVAL,
        timeout=30 * 60,
    )


example_hubspot_xcom()
