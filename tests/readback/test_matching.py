"""The read-back judgement shared by the sensor and the trigger (pure functions, no server)."""

from __future__ import annotations

import json

import pytest

from airflow_hubspot_assoc.association_types import AssociationPair as ExpectedPair
from airflow_hubspot_assoc.association_types import AssociationType, type_set
from airflow_hubspot_assoc.readback import decode_pairs, encode_pairs
from airflow_hubspot_assoc.readback.matching import (
    FailedPairs,
    MissingPair,
    check_pairs,
    chunk_by_from_ids,
    describe_missing,
    from_ids_of,
    progress_text,
)

PRIMARY = ("HUBSPOT_DEFINED", 1)
UNLABELED = ("HUBSPOT_DEFINED", 279)
LABEL = ("USER_DEFINED", 42)


def _target(to_id: str, *types: tuple[str, int]) -> dict:
    return {
        "toObjectId": to_id,
        "associationTypes": [{"category": c, "typeId": t, "label": None} for c, t in types],
    }


class TestAssociationTypes:
    def test_both_shapes(self):
        create_shape = [{"associationCategory": "USER_DEFINED", "associationTypeId": 42}]
        read_shape = [{"category": "USER_DEFINED", "typeId": "42", "label": "Boss"}]
        assert type_set(create_shape) == type_set(read_shape) == frozenset({LABEL})

    def test_empty_means_no_types(self):
        assert type_set([]) == type_set(None) == frozenset()

    def test_one_representation_is_a_plain_pair(self):
        label = AssociationType.parse({"category": "USER_DEFINED", "typeId": 42})
        assert label == LABEL and hash(label) == hash(LABEL)
        assert label.as_spec() == {"associationCategory": "USER_DEFINED", "associationTypeId": 42}
        assert AssociationType.parse(label.as_spec()) == label
        assert label.describe() == "USER_DEFINED/42"

    @pytest.mark.parametrize(
        "bad",
        [
            [{"associationTypeId": 1}],
            [{"associationCategory": "HUBSPOT_DEFINED"}],
            [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": True}],
            [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": "one"}],
            ["HUBSPOT_DEFINED"],
        ],
    )
    def test_rejects_malformed(self, bad):
        with pytest.raises(ValueError, match="ssociation type"):
            type_set(bad)


class TestCheckPairs:
    def test_confirmed_when_expected_types_are_a_subset(self):
        expected = [ExpectedPair("1", "10", frozenset({LABEL}))]
        read = {"1": [_target("10", UNLABELED, LABEL)]}
        result = check_pairs(expected, read)
        assert result.confirmed == expected
        assert result.missing == []

    def test_missing_when_not_associated(self):
        expected = [ExpectedPair("1", "10", frozenset({PRIMARY}))]
        result = check_pairs(expected, {"1": [_target("11", PRIMARY)]})
        assert result.confirmed == []
        assert result.missing == [MissingPair(expected[0], None)]
        assert "not associated" in result.missing[0].describe()

    def test_missing_when_types_differ(self):
        expected = [ExpectedPair("1", "10", frozenset({LABEL}))]
        result = check_pairs(expected, {"1": [_target("10", UNLABELED)]})
        assert result.missing == [MissingPair(expected[0], frozenset({UNLABELED}))]
        assert "has only [HUBSPOT_DEFINED/279]" in result.missing[0].describe()
        assert result.missing_pairs == expected

    def test_default_association_accepts_any_type(self):
        expected = [ExpectedPair("1", "10")]
        assert check_pairs(expected, {"1": [_target("10", PRIMARY)]}).confirmed == expected
        assert check_pairs(expected, {"1": [_target("10")]}).confirmed == expected

    def test_from_id_reported_missing(self):
        expected = [ExpectedPair("1", "10")]
        assert check_pairs(expected, {"1": []}).missing == [MissingPair(expected[0], None)]
        assert check_pairs(expected, {}).missing == [MissingPair(expected[0], None)]

    def test_types_merge_across_pages(self):
        expected = [ExpectedPair("1", "10", frozenset({PRIMARY, LABEL}))]
        read = {"1": [_target("10", PRIMARY), _target("20", PRIMARY), _target("10", LABEL)]}
        assert check_pairs(expected, read).confirmed == expected

    def test_numeric_ids_in_answer(self):
        expected = [ExpectedPair("1", "10")]
        assert (
            check_pairs(expected, {"1": [{"toObjectId": 10, "associationTypes": []}]}).confirmed == expected
        )


class TestChunking:
    def test_at_most_n_from_ids_per_chunk(self):
        pairs = [ExpectedPair(str(i // 2), str(i)) for i in range(10)]  # from ids 0..4, two each
        chunks = list(chunk_by_from_ids(pairs, lambda p: p.from_id, max_from_ids=2))
        assert [from_ids_of(chunk) for chunk in chunks] == [["0", "1"], ["2", "3"], ["4"]]
        assert [p for chunk in chunks for p in chunk] == pairs

    def test_at_most_n_items_per_chunk(self):
        pairs = [ExpectedPair("1", str(i)) for i in range(5)]
        chunks = list(chunk_by_from_ids(pairs, lambda p: p.from_id, max_items=2))
        assert [len(chunk) for chunk in chunks] == [2, 2, 1]

    def test_default_is_hubspot_read_limit(self):
        pairs = [ExpectedPair(str(i), "1") for i in range(2_500)]
        assert [len(c) for c in chunk_by_from_ids(pairs, lambda p: p.from_id)] == [1_000, 1_000, 500]

    def test_empty(self):
        assert list(chunk_by_from_ids([], lambda p: p.from_id)) == []


class TestEncoding:
    def test_round_trip_plain_json(self):
        pairs = [
            ExpectedPair("1", "10", frozenset({PRIMARY})),
            ExpectedPair("2", "20"),
            ExpectedPair("3", "30", frozenset({PRIMARY})),
            ExpectedPair("4", "40", frozenset({LABEL, UNLABELED})),
        ]
        type_sets, rows = encode_pairs(pairs)
        assert len(type_sets) == 3  # shared type sets are stored once
        assert json.loads(json.dumps([type_sets, rows])) == [type_sets, rows]
        assert decode_pairs(type_sets, rows) == pairs


class TestFailedPairs:
    def test_exact_pairs(self):
        failed = FailedPairs(pairs=[("1", "10")])
        assert ExpectedPair("1", "10", frozenset({PRIMARY})) in failed
        assert ExpectedPair("1", "11") not in failed

    def test_error_contexts_use_the_operators_rule(self):
        errors = [
            {"category": "VALIDATION_ERROR", "message": "no contact 5", "context": {"fromObjectId": ["5"]}},
            {
                "category": "VALIDATION_ERROR",
                "message": "no company 70",
                "context": {"fromObjectId": ["7"], "toObjectId": ["70"]},
            },
        ]
        failed = FailedPairs.from_errors(errors)
        assert failed is not None
        assert ExpectedPair("5", "1") in failed
        assert ExpectedPair("7", "70") in failed
        assert ExpectedPair("7", "71") not in failed
        assert ExpectedPair("1", "5") not in failed

    def test_error_without_ids_cannot_tell(self):
        assert FailedPairs.from_errors([{"category": "RATE_LIMIT", "message": "x"}]) is None

    def test_empty(self):
        assert not FailedPairs()
        assert ExpectedPair("1", "2") not in FailedPairs()


def test_progress_and_missing_texts():
    assert progress_text(812, 1000) == "812 of 1,000 confirmed"
    assert progress_text(5, None) == "5 confirmed so far"
    missing = [MissingPair(ExpectedPair(str(i), "1")) for i in range(25)]
    text = describe_missing(missing, limit=20)
    assert text.count("not associated") == 20
    assert text.endswith("... and 5 more")
    assert (
        describe_missing(missing[:2])
        == "0 -> 1 [any type]: not associated; 1 -> 1 [any type]: not associated"
    )
