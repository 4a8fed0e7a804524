"""
### Labelled associations: one label for a whole load, or a label per row

**Use case.** Your portal has user-defined association labels between contacts and companies
(Settings > Objects > Contacts > Associations, or the labels API), such as "Billing contact" and
"Decision maker", and your data says which label each relationship should carry.

**Flow.**

* `label_billing_contacts` creates every pair of a list with one label, named by
  `association_label="Billing contact"`. The operator resolves the name once through the labels
  API (case-insensitively) before any write; an unknown name fails the task before anything is
  sent, and the error lists the labels that exist.
* `label_per_row` reads a CSV file with an `association_label` column: each row gets its own label,
  and rows with an empty label get HubSpot's default (unlabeled) association. Every distinct label
  name is resolved before the first write, so an unknown label anywhere in the file costs no write.
  `write_labelled_file` writes that file (a made-up sample; point `labels_file` at your own).
* One sensor per operator reads the created pairs back with their label's type id
  (`verify="all"`), until HubSpot shows each of them.

HubSpot also keeps the unlabeled association next to a labelled one; the sensor accepts extra types.

**Setup.** Create the labels first (the test suite and the demo use the HubSpot stand-in's
`add_label`). The connection `hubspot_default` needs the contacts and companies read and write
scopes.

**Params.** `labels_file`: where the per-row file is (written when missing). Its default comes from
the environment variable `HUBSPOT_EXAMPLE_LABELS_FILE`, else the system's temporary directory.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator
from airflow_hubspot_assoc.sensors.associations import HubSpotBatchStatusSensor

DEFAULT_LABELS_FILE = os.environ.get("HUBSPOT_EXAMPLE_LABELS_FILE") or str(
    Path(tempfile.gettempdir()) / "hubspot_example_labels" / "contact_company_roles.csv"
)
# Tests and the demo shorten the wait between read-backs; 30 s suits a real portal.
POKE_INTERVAL = float(os.environ.get("HUBSPOT_EXAMPLE_POKE_INTERVAL", "30"))
#: The labels this example expects in the portal (contacts -> companies, USER_DEFINED).
LABELS = ("Billing contact", "Decision maker")

with DAG(
    dag_id="example_hubspot_labels",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "hubspot", "associations", "labels"],
    doc_md=__doc__,
    params={
        "labels_file": Param(
            DEFAULT_LABELS_FILE,
            type="string",
            minLength=1,
            description="CSV with from_id, to_id and association_label columns (written when missing).",
        ),
    },
) as dag:

    @task
    def billing_contacts() -> list[list[int]]:
        """Return [contact id, company id] pairs that should carry the "Billing contact" label."""
        return [[2_000 + i, 7_000 + i % 10] for i in range(40)]

    billing = BatchCreateAssociationsOperator(
        task_id="label_billing_contacts",
        from_object_type="contacts",
        to_object_type="companies",
        pairs=billing_contacts(),
        association_label="Billing contact",
    )
    HubSpotBatchStatusSensor(
        task_id="confirm_billing_contacts",
        batch=billing.output,
        verify="all",
        poke_interval=POKE_INTERVAL,
        timeout=30 * 60,
    )

    @task
    def write_labelled_file(path: str) -> str:
        """Write the per-row sample file when it is missing; return its path."""
        target = Path(path)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["from_id", "to_id", "association_label"])
                for i in range(60):
                    # Every third row has no label: it gets HubSpot's default association.
                    label = "" if i % 3 == 2 else LABELS[i % 3]
                    writer.writerow([3_000 + i, 8_000 + i % 12, label])
        return str(target)

    per_row = BatchCreateAssociationsOperator(
        task_id="label_per_row",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=write_labelled_file(path="{{ params.labels_file }}"),
    )
    HubSpotBatchStatusSensor(
        task_id="confirm_per_row",
        batch=per_row.output,
        verify="all",
        poke_interval=POKE_INTERVAL,
        timeout=30 * 60,
    )
