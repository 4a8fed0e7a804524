"""SyncAssociationsOperator with business keys as input and with its state on S3 (a real S3 API: moto
in server mode), through ``dag.test()`` against the stand-in."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.io import store

from tests.helpers import write_csv
from tests.operators.test_sync import pairs_of, stored, sync, writes
from tests.s3_server import CONN_ID, moto_s3_server

EXTERNAL_ID = {"object_type": "companies", "name": "external_id", "has_unique_value": True}
CONTACTS = {"object_type": "contacts", "count": 60, "properties": {"email": "user{n}@example.com"}}
COMPANIES = {
    "object_type": "companies",
    "count": 60,
    "first_id": 5001,
    "properties": {"external_id": "C-{n:04d}"},
}


@pytest.mark.hubspot_standin(generated_records=[CONTACTS, COMPANIES], properties=[EXTERNAL_ID])
def test_business_keys_are_resolved_before_the_diff(request, hubspot_conn, tmp_path):
    def rows(numbers):
        return [(f"user{n}@example.com", f"C-{n:04d}") for n in numbers]

    header = ("email", "erp")
    keys = dict(
        from_id_field="email", to_id_field="erp", from_id_property="email", to_id_property="external_id"
    )
    path = write_csv(tmp_path / "day0.csv", rows(range(40)), header)
    state, raw = sync(request, hubspot_conn, 0, path, tmp_path / "state", mode="mirror", **keys)
    assert state == "success"
    assert (raw["total"], raw["created"], raw["failed"]) == (40, 40, 0)
    assert raw["resolution"]["from"]["property"] == "email"
    day0 = stored(hubspot_conn)
    assert len(day0) == 40
    # four pairs leave, five arrive; the snapshot holds record ids, so only those are sent
    path = write_csv(tmp_path / "day1.csv", rows(range(4, 45)), header)
    state, raw = sync(request, hubspot_conn, 1, path, tmp_path / "state", mode="mirror", **keys)
    assert state == "success"
    assert (raw["created"], raw["removed"], raw["unchanged"]) == (5, 4, 36)
    assert writes(hubspot_conn) == {"batch_create": 1, "batch_labels_archive": 1}
    assert len(stored(hubspot_conn)) == 41
    assert len(stored(hubspot_conn) & day0) == 36


@pytest.mark.slow
def test_state_on_s3(request, hubspot_conn, tmp_path):
    with moto_s3_server() as server, pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_AWS_DEFAULT", server.connection_json())
        env.setattr(store, "_STORE_CACHE", {})
        bucket = server.create_bucket("sync-state")
        state_url = f"s3://{CONN_ID}@{bucket}/hubspot/contacts-companies"
        path = write_csv(tmp_path / "day0.csv", pairs_of(1, 121))
        state, raw = sync(request, hubspot_conn, 0, path, state_url, mode="mirror")
        assert state == "success" and raw["created"] == 120
        path = write_csv(tmp_path / "day1.csv", pairs_of(11, 131))
        state, raw = sync(request, hubspot_conn, 1, path, state_url, mode="mirror")
        assert state == "success"
        assert (raw["created"], raw["removed"], raw["generation"]) == (10, 10, 2)
        assert stored(hubspot_conn) == set(pairs_of(11, 131))
        client = server.client()
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
        prefix = "hubspot/contacts-companies/"
        assert [k for k in keys if not k.startswith(prefix + "failed/")] == [
            prefix + "snapshot-00000001.bin",
            prefix + "snapshot-00000002.bin",
            prefix + "state.json",
        ]
        pointer = json.loads(client.get_object(Bucket=bucket, Key=prefix + "state.json")["Body"].read())
        assert pointer["generation"] == 2 and pointer["snapshot"] == "snapshot-00000002.bin"
