"""Fuzz the load's report: any JSON object HubSpot (or a proxy) could answer is accounted for pair by pair.

Why: ``batches.outcome_of`` and ``report.LoadReport`` turn HubSpot's batch answers into the numbers a
data engineer trusts (created, failed) and into the XCom record and checkpoints. HubSpot has changed
these bodies over time (200/201/207, ``results`` shapes, error ``context`` keys), and proxies answer
odd things. Whatever the body, ``outcome_of`` raises nothing, every pair of a batch must come out
exactly once (created or failed), and the record must stay plain JSON within its bounds that parses
back to the same record and survives a checkpoint round trip.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_hubspot_assoc.association_types import AssociationType
from airflow_hubspot_assoc.batches import Batch, BatchOutcome, Item, outcome_of
from airflow_hubspot_assoc.pairs import Pair
from airflow_hubspot_assoc.record import MAX_ERRORS, MAX_SAMPLE, MAX_TYPES, BatchRecord
from airflow_hubspot_assoc.report import LoadReport

TYPES = (AssociationType("HUBSPOT_DEFINED", 279),)

# -- strategies --------------------------------------------------------------------------------
_ids = st.integers(min_value=1, max_value=40).map(str)
_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    _ids,
)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _anything_or(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the HubSpot-like value, sometimes any JSON value in its place."""
    return st.one_of(strategy, strategy, strategy, _json)


_id_list = st.one_of(st.lists(_anything_or(_ids), max_size=3), _ids, st.integers(1, 40))
_context_key = st.sampled_from(
    ["fromObjectId", "toObjectId", "fromObjectIds", "toIds", "ids", "objectIds", "id", "other"]
)
_context = st.dictionaries(_context_key, _anything_or(_id_list), max_size=3)
_error = st.fixed_dictionaries(
    {},
    optional={
        "status": _anything_or(st.just("error")),
        "category": _anything_or(st.sampled_from(["VALIDATION_ERROR", "OBJECT_NOT_FOUND", "CANCELED"])),
        "message": _anything_or(st.text(max_size=20)),
        "correlationId": _anything_or(st.uuids().map(str)),
        "context": _anything_or(_context),
        "errors": _anything_or(
            st.lists(st.fixed_dictionaries({}, optional={"context": _anything_or(_context)}), max_size=2)
        ),
    },
)
_result = st.one_of(
    st.fixed_dictionaries(
        {"fromObjectId": _anything_or(_ids), "toObjectId": _anything_or(_ids)},
        optional={"fromObjectTypeId": st.just("0-1"), "labels": st.lists(st.text(max_size=5), max_size=2)},
    ),
    st.fixed_dictionaries(
        {
            "from": _anything_or(st.fixed_dictionaries({"id": _ids})),
            "to": _anything_or(st.fixed_dictionaries({"id": _ids})),
        }
    ),
)
_timestamp = st.one_of(st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "Z"), st.none())
_body = st.fixed_dictionaries(
    {},
    optional={
        "status": _anything_or(
            st.sampled_from(["COMPLETE", "PENDING", "PROCESSING", "CANCELED", "complete"])
        ),
        "results": _anything_or(st.lists(_anything_or(_result), max_size=6)),
        "errors": _anything_or(st.lists(_anything_or(_error), max_size=4)),
        "numErrors": _anything_or(st.integers(0, 10)),
        "startedAt": _anything_or(_timestamp),
        "completedAt": _anything_or(_timestamp),
    },
)
_batch = st.lists(st.tuples(_ids, _ids), min_size=1, max_size=8).map(
    lambda pairs: Batch(
        default=False,
        items=[Item(Pair(f, t, line, "pairs.csv"), TYPES) for line, (f, t) in enumerate(pairs, start=2)],
    )
)


def _keys(items: list[Any]) -> Counter[tuple[str, str, int]]:
    return Counter((p.from_id, p.to_id, p.line) for p in items)


# -- properties --------------------------------------------------------------------------------
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_batch, _body)
def test_every_pair_of_a_batch_is_created_or_failed_exactly_once(batch, body):
    outcome: BatchOutcome = outcome_of(batch, body)
    created = _keys([item.pair for item in outcome.created])
    failed = _keys([failure.pair for failure in outcome.failures])
    assert created + failed == _keys([item.pair for item in batch.items])
    assert outcome.status and outcome.status == outcome.status.upper()
    for failure in outcome.failures:
        assert failure.category and failure.message  # a failed pair always says why


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_batch, _body), min_size=1, max_size=5))
def test_the_record_accounts_for_every_pair_and_stays_plain_json(answers):
    report = LoadReport(from_type="contacts", to_type="companies", conn_id="hubspot_default", source={})
    sent = 0
    for batch, body in answers:
        report.add_outcome(outcome_of(batch, body))
        sent += len(batch.items)
    report.total = sent
    batch_record = report.to_record()
    record = batch_record.to_xcom()
    assert BatchRecord.from_xcom(record) == batch_record
    assert len(record["typesUsed"]) <= MAX_TYPES
    assert record["created"] + record["failed"] + record["invalid"] + record["duplicates"] == record["total"]
    assert len(record["errors"]) <= MAX_ERRORS and len(record["sample"]) <= MAX_SAMPLE
    assert json.loads(json.dumps(record, allow_nan=False)) == record  # XCom and checkpoints are JSON

    # a checkpoint round trip keeps the record
    restored = LoadReport(from_type="contacts", to_type="companies", conn_id="hubspot_default", source={})
    restored.restore(json.loads(json.dumps(report.snapshot())))
    restored.total = sent
    again = restored.to_record().to_xcom()
    for key in ("status", "created", "failed", "errors", "sample", "pending", "typesUsed"):
        assert again[key] == record[key], key
    if report.started_at is not None:
        assert again["startedAt"] == record["startedAt"]
