"""Batch building and the accounting of HubSpot's answers, pair by pair."""

from __future__ import annotations

import json

from airflow_hubspot_assoc.association_types import AssociationType
from airflow_hubspot_assoc.batches import (
    Batch,
    BatchBuilder,
    Item,
    combined_status,
    outcome_of,
    whole_batch_failure,
)
from airflow_hubspot_assoc.pairs import Pair

PRIMARY = (AssociationType("HUBSPOT_DEFINED", 1),)
UNLABELED = (AssociationType("HUBSPOT_DEFINED", 279),)


def pair(from_id: str, to_id: str, line: int = 2) -> Pair:
    return Pair(from_id, to_id, line, "pairs.csv")


def batch_of(*pairs: Pair, types=PRIMARY) -> Batch:
    return Batch(default=not types, items=[Item(p, types) for p in pairs])


def test_builder_fills_batches_and_drops_duplicates_within_a_batch():
    builder = BatchBuilder(batch_size=2)
    assert builder.add(pair("1", "2"), PRIMARY) == []
    assert builder.add(pair("1", "2"), PRIMARY) == []  # exact duplicate
    (full,) = builder.add(pair("1", "3"), PRIMARY)
    assert [(i.pair.from_id, i.pair.to_id) for i in full.items] == [("1", "2"), ("1", "3")]
    assert builder.duplicates == 1
    # the same pair in a later batch is sent again (HubSpot's create is idempotent): memory stays flat
    assert builder.add(pair("1", "2"), PRIMARY) == []
    assert builder.duplicates == 1
    assert [len(b.items) for b in builder.flush()] == [1]


def test_a_full_batch_closes_every_open_batch():
    builder = BatchBuilder(batch_size=2)
    builder.add(pair("1", "2"), ())
    builder.add(pair("1", "2"), PRIMARY)
    closed = builder.add(pair("1", "3"), PRIMARY)
    assert sorted((b.default, len(b.items)) for b in closed) == [(False, 2), (True, 1)]
    assert builder.flush() == []


def test_builder_keeps_default_and_labelled_pairs_in_separate_batches():
    builder = BatchBuilder(batch_size=10)
    builder.add(pair("1", "2"), PRIMARY)
    builder.add(pair("1", "2"), ())  # same ids, other endpoint: not a duplicate
    batches = builder.flush()
    assert sorted(b.default for b in batches) == [False, True]
    assert builder.duplicates == 0
    default = next(b for b in batches if b.default)
    assert default.inputs() == [{"from": {"id": "1"}, "to": {"id": "2"}}]
    labelled = next(b for b in batches if not b.default)
    assert labelled.inputs() == [
        {
            "from": {"id": "1"},
            "to": {"id": "2"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
        }
    ]


def test_encoded_inputs_are_the_json_of_inputs_for_every_kind_of_batch():
    two_types = (AssociationType("HUBSPOT_DEFINED", 279), AssociationType("USER_DEFINED", 36))
    mixed = Batch(
        default=False,
        items=[
            Item(pair("1", "10"), PRIMARY),
            Item(pair("9223372036854775807", "20"), two_types),
            Item(pair("3", "30"), PRIMARY),
        ],
    )
    default = batch_of(pair("1", "2"), pair("3", "4"), types=())
    for batch in (mixed, default, batch_of(pair("5", "6"))):
        encoded = batch.encoded_inputs()
        assert json.loads(encoded) == batch.inputs()
        assert b" " not in encoded  # compact, as json.dumps with separators would write it
    assert json.loads(Batch(default=True).encoded_inputs()) == []


def test_207_errors_are_mapped_to_the_pairs_they_name():
    batch = batch_of(pair("1", "10"), pair("2", "20"), pair("3", "30"), pair("2", "21"))
    body = {
        "status": "COMPLETE",
        "results": [],
        "numErrors": 2,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "no contact 2",
                "context": {"fromObjectId": ["2"]},
                "correlationId": "c-1",
            },
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "no company 30",
                "context": {"toObjectId": ["30"]},
            },
        ],
    }
    outcome = outcome_of(batch, body)
    assert [(i.pair.from_id, i.pair.to_id) for i in outcome.created] == [("1", "10")]
    failed = {(f.pair.from_id, f.pair.to_id): (f.category, f.message) for f in outcome.failures}
    assert failed == {
        ("2", "20"): ("VALIDATION_ERROR", "no contact 2"),
        ("2", "21"): ("VALIDATION_ERROR", "no contact 2"),
        ("3", "30"): ("VALIDATION_ERROR", "no company 30"),
    }
    assert outcome.failures[0].correlation_id == "c-1"


def test_an_error_naming_both_ids_only_fails_that_exact_pair():
    batch = batch_of(pair("1", "10"), pair("1", "11"))
    body = {
        "status": "COMPLETE",
        "results": [],
        "errors": [
            {
                "category": "VALIDATION_ERROR",
                "message": "bad",
                "context": {"fromObjectId": ["1"], "toObjectId": ["11"]},
            }
        ],
    }
    outcome = outcome_of(batch, body)
    assert [(f.pair.to_id) for f in outcome.failures] == ["11"]
    assert [(i.pair.to_id) for i in outcome.created] == ["10"]


def test_an_error_without_ids_falls_back_to_the_results_list():
    batch = batch_of(pair("1", "10"), pair("2", "20"))
    body = {
        "status": "COMPLETE",
        "results": [
            {
                "fromObjectTypeId": "0-1",
                "fromObjectId": "1",
                "toObjectTypeId": "0-2",
                "toObjectId": "10",
                "labels": [],
            }
        ],
        "errors": [{"category": "VALIDATION_ERROR", "message": "something failed"}],
    }
    outcome = outcome_of(batch, body)
    assert [i.pair.from_id for i in outcome.created] == ["1"]
    assert [(f.pair.from_id, f.message) for f in outcome.failures] == [("2", "something failed")]


def test_canceled_batch_fails_every_pair_with_hubspots_reason():
    batch = batch_of(pair("1", "10"), pair("2", "20"))
    outcome = outcome_of(
        batch, {"status": "CANCELED", "results": [], "errors": [{"message": "portal locked"}]}
    )
    assert outcome.status == "CANCELED"
    assert outcome.created == []
    assert {(f.category, f.message) for f in outcome.failures} == {("CANCELED", "portal locked")}


def test_whole_batch_failure_accounts_for_every_pair():
    batch = batch_of(pair("1", "10"), pair("2", "20"), pair("3", "30"))
    outcome = whole_batch_failure(batch, "VALIDATION_ERROR", "bad request", "corr")
    assert len(outcome.failures) == 3 and outcome.created == []
    assert outcome.errors == [
        {"status": "error", "category": "VALIDATION_ERROR", "message": "bad request", "correlationId": "corr"}
    ]


def test_halves_keep_every_item():
    batch = batch_of(*(pair(str(i), "9") for i in range(1, 6)))
    first, second = batch.halves()
    assert [i.pair for i in first.items + second.items] == [i.pair for i in batch.items]


def test_combined_status():
    assert combined_status([]) == "COMPLETE"
    assert combined_status(["COMPLETE", "COMPLETE"]) == "COMPLETE"
    assert combined_status(["PENDING"]) == "PENDING"
    assert combined_status(["PENDING", "COMPLETE"]) == "PROCESSING"
    assert combined_status(["PROCESSING", "PENDING"]) == "PROCESSING"
    assert combined_status(["COMPLETE", "CANCELED", "PROCESSING"]) == "CANCELED"
