"""
### Load by email and domain: the warehouse's keys instead of HubSpot record ids

**Use case.** The warehouse knows which person works for which company by their contact's email and
their company's website, not by HubSpot record ids. The operator finds the records itself: contacts
by `email` (batch read by `idProperty`, 100 keys a request) and companies by `domain` (search, since
HubSpot does not keep domains unique). A company's own id kept in a property with unique values
(`to_id_property="external_id"`) works the same way, through batch read.

**Flow.**

1. `export_pairs` returns the path of the export (a CSV with `email` and `website` columns). When
   the file is local and missing, it writes a small made-up sample there, so the DAG runs out of
   the box against the HubSpot stand-in; on a real portal point `pairs_file` at your export.
2. `create_associations` reads the whole file first and collects each distinct email and domain;
   it resolves each once, before the first write (`https://www.Acme.com/about` and `acme.com` are
   the same domain; emails ignore case). A key that matches no record fails its pair with
   `UNRESOLVED_KEY`, a domain shared by several companies with `AMBIGUOUS_KEY`; both go to the
   failed-pairs file next to the export, with the key as written, and up to 5 % are tolerated. The
   resolved keys are kept under `key_cache_path`, so the next run looks up only new keys.
3. `confirm_associations` reads every created pair back (`verify="all"`): it maps the export's keys
   to record ids through the key cache the operator wrote (the record's `resolution` names the
   files), so it sends no lookups of its own and waits for exactly the ids the load used.

**Params.** `pairs_file`: the export (default from `HUBSPOT_EXAMPLE_KEYS_FILE`, else the system's
temporary directory). `key_cache_path`: a folder, locally or on object storage
(`s3://aws_default@bucket/hubspot-keys/`), kept between runs (default: `_key_cache` next to the
export). The connection `hubspot_default` needs the contacts and companies read scopes besides the
association scopes.
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

DEFAULT_PAIRS_FILE = os.environ.get("HUBSPOT_EXAMPLE_KEYS_FILE") or str(
    Path(tempfile.gettempdir()) / "hubspot_example_keys" / "contact_companies.csv"
)
# Tests and the demo shorten the wait between read-backs; 30 s suits a real portal.
POKE_INTERVAL = float(os.environ.get("HUBSPOT_EXAMPLE_POKE_INTERVAL", "30"))
#: The made-up sample: contacts ``user{n}@example.com`` and companies ``co{n}.example`` (the test
#: suite seeds the stand-in with those records), written as a warehouse would: mixed case, websites.
SAMPLE_CONTACTS = 150
SAMPLE_COMPANIES = 30


def write_sample_export(path: Path) -> None:
    """Write made-up email -> website rows, two of them for contacts that do not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "website"])
        for n in range(SAMPLE_CONTACTS):
            writer.writerow([f"User{n}@Example.com", f"https://www.co{n % SAMPLE_COMPANIES}.example/about"])
        for n in range(2):
            writer.writerow([f"left.the.company{n}@example.com", "co1.example"])


with DAG(
    dag_id="example_hubspot_keys",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "hubspot", "associations", "business-keys"],
    doc_md=__doc__,
    params={
        "pairs_file": Param(
            DEFAULT_PAIRS_FILE,
            type="string",
            minLength=1,
            description="CSV (or URL) with email and website columns (a sample is written when missing).",
        ),
        "key_cache_path": Param(
            "",
            type="string",
            description="Folder or URL where resolved keys are kept between runs; empty: _key_cache "
            "next to the export.",
        ),
    },
) as dag:

    @task
    def export_pairs(pairs_file: str) -> str:
        """Return the export's path, writing the sample first when a local file is missing."""
        if "://" not in pairs_file and not Path(pairs_file).exists():
            write_sample_export(Path(pairs_file))
        return pairs_file

    create = BatchCreateAssociationsOperator(
        task_id="create_associations",
        from_object_type="contacts",
        to_object_type="companies",
        pairs_path=export_pairs(pairs_file="{{ params.pairs_file }}"),
        from_id_field="email",
        from_id_property="email",
        to_id_field="website",
        to_id_property="domain",
        key_cache_path=(
            "{{ params.key_cache_path or (params.pairs_file.rsplit('/', 1)[0] ~ '/_key_cache') }}"
        ),
        failed_pairs_path="{input_dir}/_{input_name}.failed.jsonl",
        max_failed_ratio=0.05,
    )
    HubSpotBatchStatusSensor(
        task_id="confirm_associations",
        batch=create.output,
        verify="all",
        poke_interval=POKE_INTERVAL,
        timeout=30 * 60,
    )
