"""
### Load a sharded export into HubSpot: one mapped task per part

**Use case.** A warehouse or Spark job exports the contact-to-company relationships as several
parts in one folder (`part-00000.csv`, `part-00001.csv`, ... or Parquet), locally or in object
storage (`s3://`, `gs://`, `abfs://`, any URL Airflow's `ObjectStoragePath` understands). HubSpot
should show every relationship; pairs that HubSpot refuses (a record deleted since the export, say)
are set aside with HubSpot's reason so they can be fixed and sent again.

**Flow.**

1. `list_parts` lists the data parts of `export_dir` (files ending in `.csv`, `.csv.gz` or
   `.parquet`; names starting with `_` or `.` are bookkeeping and skipped). When `export_dir` is a
   local folder that does not exist yet, it first writes a small sample export there, so the DAG
   runs out of the box (against the HubSpot stand-in; on a real portal use real record ids).
2. `create_associations` is mapped over the parts (`.partial(...).expand(pairs_path=...)`): one task
   instance per part, retried and inspected separately, and named after its part in the UI
   (`map_index_template`). Each reads its part, validates every row
   before the first write, creates HubSpot's default contact-to-company association in batches of
   100 and writes the pairs HubSpot refused to `_<part>.failed.jsonl` next to the part
   (`failed_pairs_path="{input_dir}/_{input_name}.failed.jsonl"`; the leading `_` keeps it out of the
   next listing). Up to 5 % failed pairs per part are tolerated (`max_failed_ratio=0.05`); above that
   the task fails after sending everything else.
3. `confirm_associations` is mapped over the operators' batch records (`create.output`): one sensor
   per part reads the whole part back (`verify="all"`, skipping the pairs listed as failed) until
   HubSpot shows every association.

**Params.** `export_dir`: the folder (or URL) of the export. Its default comes from the environment
variable `HUBSPOT_EXAMPLE_EXPORT_DIR`, else a folder in the system's temporary directory.

**Scale.** Every mapped task paces itself by HubSpot's rate-limit headers; put the tasks in an
Airflow pool (`pool="hubspot_app"`, see `example_hubspot_scheduled`) when many run at once on
several workers, since all of them share one HubSpot app's limit.
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

DEFAULT_EXPORT_DIR = os.environ.get("HUBSPOT_EXAMPLE_EXPORT_DIR") or str(
    Path(tempfile.gettempdir()) / "hubspot_example_export"
)
# Tests and the demo shorten the wait between read-backs; 30 s suits a real portal.
POKE_INTERVAL = float(os.environ.get("HUBSPOT_EXAMPLE_POKE_INTERVAL", "30"))
PART_SUFFIXES = (".csv", ".csv.gz", ".parquet")
SAMPLE_PARTS = 3
SAMPLE_ROWS_PER_PART = 200


def is_data_part(name: str) -> bool:
    """Whether a file name is a data part of the export (and not a marker or a failed-pairs file)."""
    return not name.startswith(("_", ".")) and name.lower().endswith(PART_SUFFIXES)


def write_sample_export(folder: Path) -> None:
    """Write a small export of made-up contact -> company pairs, so the DAG runs out of the box."""
    folder.mkdir(parents=True)
    for part in range(SAMPLE_PARTS):
        with (folder / f"part-{part:05d}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["from_id", "to_id"])
            for row in range(SAMPLE_ROWS_PER_PART):
                contact = 10_000 + part * SAMPLE_ROWS_PER_PART + row
                writer.writerow([contact, 50_000 + contact % 97])
    (folder / "_SUCCESS").write_text("", encoding="utf-8")


with DAG(
    dag_id="example_hubspot_files",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "hubspot", "associations", "dynamic-task-mapping"],
    doc_md=__doc__,
    params={
        "export_dir": Param(
            DEFAULT_EXPORT_DIR,
            type="string",
            minLength=1,
            description="Folder or object-storage URL of the sharded export (CSV or Parquet parts).",
        ),
    },
) as dag:

    @task
    def list_parts(export_dir: str) -> list[str]:
        """Return the export's data parts, sorted, so each gets its own mapped task instance."""
        if "://" in export_dir:
            from airflow.sdk import ObjectStoragePath

            remote = ObjectStoragePath(export_dir)
            parts = [str(path) for path in remote.iterdir() if path.is_file() and is_data_part(path.name)]
        else:
            local = Path(export_dir)
            if not local.exists():
                write_sample_export(local)
            parts = [str(path) for path in local.iterdir() if path.is_file() and is_data_part(path.name)]
        if not parts:
            raise FileNotFoundError(f"No data parts ({', '.join(PART_SUFFIXES)}) in {export_dir}")
        return sorted(parts)

    create = BatchCreateAssociationsOperator.partial(
        task_id="create_associations",
        from_object_type="contacts",
        to_object_type="companies",
        failed_pairs_path="{input_dir}/_{input_name}.failed.jsonl",
        max_failed_ratio=0.05,
        map_index_template="{{ task.pairs_path.rsplit('/', 1)[-1] }}",
    ).expand(pairs_path=list_parts(export_dir="{{ params.export_dir }}"))

    HubSpotBatchStatusSensor.partial(
        task_id="confirm_associations",
        verify="all",
        poke_interval=POKE_INTERVAL,
        timeout=60 * 60,
        map_index_template="{{ task.batch['source']['path'].rsplit('/', 1)[-1] }}",
    ).expand(batch=create.output)
