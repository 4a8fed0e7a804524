"""
### Load, check, and revert the load when the check fails

**Use case.** A nightly job associates contacts with companies from a warehouse query. When the
query goes wrong (a join on the wrong key, a stale table), many pairs point at records that do not
exist and HubSpot refuses them; the ones it accepted are probably wrong too. Rather than leave half a
bad load in the CRM, this DAG undoes exactly what the run changed.

**Flow.**

* `load_associations` creates the pairs with `ledger_path`: before the first write it reads the
  pairs' current associations (one batch read per 1,000 contacts) and saves them, then records, as
  segments commit, what each pair gained. It tolerates failures (`max_failed_ratio=1.0`) so that the
  check, not the load, decides.
* `confirm_load` waits until HubSpot shows the created pairs.
* `check_load` reads the load's record: when more than `max_failed_ratio` (a param) of the pairs
  failed, it branches to `revert_load`, else to `keep_load`.
* `revert_load` applies the inverse of the ledger named by the record's `ledgerPath`: it removes what
  the run added (pairs that had nothing before lose everything; pairs that already had an unlabeled
  association lose only the labels the run added) and restores what it removed. Reverting twice
  changes nothing the second time.

**Setup.** The connection `hubspot_default` needs the contacts and companies read and write scopes.
`ledger_root` must be reachable by every worker (object storage in production, e.g.
`s3://aws_default@bucket/hubspot-ledgers`).

**Params.** `ledger_root`: where ledgers go (one folder per run); its default comes from the
environment variable `HUBSPOT_EXAMPLE_LEDGER_ROOT`, else the system's temporary directory.
`max_failed_ratio`: the share of failed pairs above which the load is reverted.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.operators.revert import RevertAssociationsOperator
from airflow_hubspot_assoc.record import BatchRecord
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

DEFAULT_LEDGER_ROOT = os.environ.get("HUBSPOT_EXAMPLE_LEDGER_ROOT") or str(
    Path(tempfile.gettempdir()) / "hubspot_example_ledgers"
)
# Tests and the demo shorten the wait between read-backs; 30 s suits a real portal.
POKE_INTERVAL = float(os.environ.get("HUBSPOT_EXAMPLE_POKE_INTERVAL", "30"))

with DAG(
    dag_id="example_hubspot_revert",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "hubspot", "associations", "revert"],
    doc_md=__doc__,
    params={
        "ledger_root": Param(
            DEFAULT_LEDGER_ROOT, type="string", minLength=1, description="Where each run's ledger goes."
        ),
        "max_failed_ratio": Param(
            0.05, type="number", minimum=0, maximum=1, description="Revert the load above this share."
        ),
    },
) as dag:

    @task
    def contact_company_pairs() -> list[list[int]]:
        """Return [contact id, company id] pairs, as a warehouse query would."""
        return [[4_000 + i, 9_000 + i % 10] for i in range(50)]

    load = BatchCreateAssociationsOperator(
        task_id="load_associations",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=contact_company_pairs(),
        max_failed_ratio=1.0,
        # Jinja fills the root; the operator fills {run_id}: one ledger per run.
        ledger_path="{{ params.ledger_root }}/{run_id}",
    )
    confirm = HubSpotBatchStatusSensor(
        task_id="confirm_load", batch=load.output, poke_interval=POKE_INTERVAL, timeout=30 * 60
    )

    @task.branch
    def check_load(raw: dict[str, Any], max_failed_ratio: float | str) -> str:
        """Keep the load, or revert it when too many of its pairs failed."""
        record = BatchRecord.from_xcom(raw)
        limit = float(max_failed_ratio)  # a rendered template is a string
        ratio = record.num_errors / record.total if record.total else 0.0
        print(f"{record.num_errors} of {record.total} pairs failed ({ratio:.1%}); limit {limit:.1%}")
        return "revert_load" if ratio > limit else "keep_load"

    @task
    def keep_load() -> None:
        """The load passed the check: nothing to undo."""

    revert = RevertAssociationsOperator(
        task_id="revert_load",
        ledger="{{ ti.xcom_pull(task_ids='load_associations')['ledgerPath'] }}",
    )
    check = check_load(load.output, max_failed_ratio="{{ params.max_failed_ratio }}")
    confirm >> check
    check >> [revert, keep_load()]
