"""The batch record: its XCom shape, parsing with clear errors, bounds and round trips (no server)."""

from __future__ import annotations

import json

import pytest

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.batches import BatchOutcome, Item
from airflow_hubspot_assoc.pairs import Pair
from airflow_hubspot_assoc.readback.expected import failed_pairs_from_errors
from airflow_hubspot_assoc.record import MAX_ERRORS, MAX_SAMPLE, MAX_TYPES, BatchRecord
from airflow_hubspot_assoc.report import LoadReport

PRIMARY = AssociationType("HUBSPOT_DEFINED", 1)
LABEL = AssociationType("USER_DEFINED", 42)
#: Every key of a create record, as the README and docs/architecture.md document it.
DOCUMENTED_KEYS = {
    "status", "requestedAt", "startedAt", "completedAt", "fromObjectType", "toObjectType",
    "hubspotConnId", "associationTypes", "typesUsed", "dryRun", "total", "created", "failed",
    "invalid", "duplicates", "requests", "retries", "throttled", "numErrors", "errors",
    "failedPairsPath", "source", "sample", "pending", "resumed", "resumedSkipped", "defaultTypes",
    "defaultCategory",
}  # fmt: skip


def _record(**overrides: object) -> dict:
    record = {
        "status": "COMPLETE",
        "fromObjectType": "contacts",
        "toObjectType": "companies",
        "hubspotConnId": "hubspot_default",
        "associationTypes": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
        "total": 2,
        "created": 2,
        "failed": 0,
        "invalid": 0,
        "numErrors": 0,
        "errors": [],
        "failedPairsPath": None,
        "dryRun": False,
        "source": {"kind": "xcom", "description": "2 pairs"},
        "sample": [
            {
                "from": "1",
                "to": "10",
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
            },
            {"from": "2", "to": "20", "types": []},
        ],
    }
    record.update(overrides)
    return record


def _report(created: int = 3, failed: int = 0) -> LoadReport:
    report = LoadReport(
        from_type="contacts",
        to_type="companies",
        conn_id="hubspot_default",
        source={"kind": "path", "path": "/data/pairs.csv", "fromIdField": "from_id", "toIdField": "to_id"},
        failed_pairs_path="/data/_failed.jsonl",
        default_types=(PRIMARY,),
    )
    items = [Item(Pair(str(i), str(100 + i), i + 1, "pairs.csv"), (PRIMARY,)) for i in range(created)]
    report.note_types((PRIMARY,))
    report.add_outcome(BatchOutcome(status="COMPLETE", created=items, failures=[], errors=[]))
    report.total = created + failed
    report.failed += failed
    return report


class TestBatchRecord:
    def test_parse_dict(self):
        record = BatchRecord.from_xcom(_record())
        assert record.status == "COMPLETE"
        assert (record.from_type, record.to_type, record.conn_id) == (
            "contacts",
            "companies",
            "hubspot_default",
        )
        assert record.sample == (AssociationPair("1", "10", frozenset({PRIMARY})), AssociationPair("2", "20"))
        assert record.association_types == (PRIMARY,)

    def test_parse_json_text_and_python_repr(self):
        assert BatchRecord.from_xcom(json.dumps(_record())) == BatchRecord.from_xcom(_record())
        assert BatchRecord.from_xcom(repr(_record())) == BatchRecord.from_xcom(_record())

    def test_sample_without_types_uses_the_record_types(self):
        record = BatchRecord.from_xcom(_record(sample=[{"from": "1", "to": "2"}]))
        assert record.sample == (AssociationPair("1", "2", frozenset({PRIMARY})),)

    @pytest.mark.parametrize(
        ("overrides", "match"),
        [
            ({"status": "DONE"}, "status must be one of"),
            ({"fromObjectType": ""}, "fromObjectType and toObjectType"),
            ({"sample": "x"}, "sample must be a list"),
            ({"sample": [{"from": "1"}]}, "need 'from' and 'to'"),
            ({"failed": -1}, "'failed' must be a non-negative integer"),
            ({"errors": {}}, "errors must be a list"),
            ({"failedPairsPath": ""}, "failedPairsPath must be a path"),
        ],
    )
    def test_rejects_bad_records(self, overrides, match):
        with pytest.raises(ValueError, match=match):
            BatchRecord.from_xcom(_record(**overrides))

    @pytest.mark.parametrize("batch", ["not json", "[1, 2]", 42, None])
    def test_rejects_non_records(self, batch):
        with pytest.raises(ValueError, match="batch must be the operator's batch record"):
            BatchRecord.from_xcom(batch)

    def test_canceled_reasons_are_merged_and_bounded(self):
        errors = [{"category": "VALIDATION_ERROR", "message": "too many"}] * 3 + [
            {"category": f"C{i}", "message": f"m{i}"} for i in range(12)
        ]
        text = BatchRecord.from_xcom(_record(status="CANCELED", errors=errors)).canceled_reasons()
        assert text.startswith("VALIDATION_ERROR: too many (x3); C0: m0")
        assert text.endswith("... and 3 more")
        assert (
            BatchRecord.from_xcom(_record(status="CANCELED")).canceled_reasons() == "HubSpot gave no reason"
        )

    def test_types_for_untyped_rows(self):
        one = _record(typesUsed=[[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]])
        assert BatchRecord.from_xcom(one).types_for_untyped_rows() == frozenset({PRIMARY})
        several = _record(
            associationTypes=[],
            typesUsed=[
                [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                [{"associationCategory": "USER_DEFINED", "associationTypeId": 42}],
            ],
        )
        assert BatchRecord.from_xcom(several).types_for_untyped_rows() is None
        several["defaultTypes"] = []
        assert BatchRecord.from_xcom(several).types_for_untyped_rows() == frozenset()

    def test_failed_pairs_from_errors(self):
        assert not failed_pairs_from_errors(BatchRecord.from_xcom(_record()))
        named = _record(failed=1, errors=[{"message": "x", "context": {"toObjectId": ["9"]}}])
        failed = failed_pairs_from_errors(BatchRecord.from_xcom(named))
        assert failed is not None and AssociationPair("1", "9") in failed
        unnamed = _record(failed=1, errors=[{"message": "whole request refused"}])
        assert failed_pairs_from_errors(BatchRecord.from_xcom(unnamed)) is None
        truncated = _record(
            failed=60, errors=[{"message": "x", "context": {"toObjectId": [str(i)]}} for i in range(50)]
        )
        assert failed_pairs_from_errors(BatchRecord.from_xcom(truncated)) is None


class TestRoundTrip:
    def test_a_load_record_has_the_documented_keys_and_parses_back_to_itself(self):
        record = _report().to_record(resumed_skipped=7)
        value = record.to_xcom()
        assert set(value) == DOCUMENTED_KEYS
        assert json.loads(json.dumps(value, allow_nan=False)) == value
        assert BatchRecord.from_xcom(value) == record
        assert BatchRecord.from_xcom(json.dumps(value)) == record
        assert (value["resumed"], value["resumedSkipped"]) == (True, 7)
        assert value["defaultTypes"] == value["associationTypes"] == [PRIMARY.as_spec()]
        assert value["typesUsed"] == [[PRIMARY.as_spec()]]
        assert value["sample"][0] == {"from": "0", "to": "100", "types": [PRIMARY.as_spec()]}
        assert value["numErrors"] == value["failed"] + value["invalid"]
        assert value["completedAt"] is not None

    def test_not_resumed_by_default(self):
        value = _report().to_record().to_xcom()
        assert (value["resumed"], value["resumedSkipped"]) == (False, 0)

    def test_later_operations_add_their_keys_only_when_set(self):
        record = BatchRecord.from_xcom(_record())
        assert record.operation == "create"
        keys = {"operation", "archived", "removed", "restored", "ledgerReads", "ledgerPath", "resolution"}
        assert not keys & set(record.to_xcom())
        with pytest.raises(ValueError, match="operation must be one of create"):
            BatchRecord.from_xcom(_record(operation="teleport"))

    def test_a_revert_record_round_trips_its_ledger_keys(self):
        raw = _record(
            operation="revert", removed=3, restored=2, ledgerReads=4, ledgerPath="s3://conn@b/ledgers/r"
        )
        record = BatchRecord.from_xcom(raw)
        assert (record.removed, record.restored, record.ledger_reads) == (3, 2, 4)
        assert record.written == 5 and "5 reverted" in record.summary()
        value = record.to_xcom()
        assert (value["restored"], value["ledgerReads"], value["ledgerPath"]) == (
            2,
            4,
            "s3://conn@b/ledgers/r",
        )
        assert BatchRecord.from_xcom(value) == record
        with pytest.raises(ValueError, match="ledgerPath"):
            BatchRecord.from_xcom(_record(ledgerPath=""))
        with pytest.raises(ValueError, match="ledgerReads"):
            BatchRecord.from_xcom(_record(ledgerReads=-1))

    def test_summary_accounts_for_every_pair(self):
        record = _report(created=3, failed=1).to_record()
        assert record.summary() == (
            "COMPLETE: 4 pairs read, 3 created, 1 failed, 0 invalid, 0 duplicates; "
            "0 requests, 0 retries, 0 throttled (429)"
        )


class TestBounds:
    @pytest.mark.parametrize(
        ("key", "bound", "item"),
        [
            ("errors", MAX_ERRORS, {"message": "x"}),
            ("sample", MAX_SAMPLE, {"from": "1", "to": "2", "types": []}),
            ("typesUsed", MAX_TYPES, []),
        ],
    )
    def test_lists_are_bounded(self, key, bound, item):
        assert len(getattr(BatchRecord.from_xcom(_record(**{key: [item] * bound})), _field(key))) == bound
        with pytest.raises(ValueError, match=f"{key} holds at most {bound} entries"):
            BatchRecord.from_xcom(_record(**{key: [item] * (bound + 1)}))

    def test_the_report_never_exceeds_them(self):
        report = _report(created=MAX_SAMPLE + 5)
        for i in range(MAX_ERRORS + 5):
            report.add_error({"message": str(i)})
        for i in range(MAX_TYPES + 5):
            report.note_types((AssociationType("USER_DEFINED", i + 1),))
        record = report.to_record()
        assert (len(record.sample), len(record.errors), len(record.types_used)) == (
            MAX_SAMPLE,
            MAX_ERRORS,
            MAX_TYPES,
        )


def _field(key: str) -> str:
    return {"errors": "errors", "sample": "sample", "typesUsed": "types_used"}[key]
