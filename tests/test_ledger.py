"""The ledger's format and state rules without HubSpot: HubSpot's create and cascade rules, the
inverse a revert applies, the last line of a pair winning across parts, and the size bound (at most
32 bytes a changed pair, compressed, on a realistic run of 100,000 pairs with random 6 to 9 digit ids)."""

from __future__ import annotations

import random

import pytest

from airflow_hubspot_assoc.association_types import AssociationType
from airflow_hubspot_assoc.ledger import (
    EMPTY,
    Ledger,
    LedgerError,
    LedgerWriter,
    decode_types,
    encode_types,
    inverse,
    state_after,
)

UNLABELED = AssociationType("HUBSPOT_DEFINED", 279)
PRIMARY = AssociationType("HUBSPOT_DEFINED", 1)
LABEL = AssociationType("USER_DEFINED", 12)


def test_types_encode_compactly_and_round_trip():
    types = frozenset({LABEL, UNLABELED, AssociationType("INTEGRATOR_DEFINED", 7)})
    assert encode_types(types) == "H279;I7;U12"
    assert decode_types(encode_types(types)) == types
    assert decode_types("") == EMPTY
    with pytest.raises(LedgerError):
        decode_types("X12")


def test_state_after_follows_hubspots_rules():
    # A label brings the unlabeled type along; a default association is the unlabeled type.
    assert state_after("create", EMPTY, [LABEL], UNLABELED) == {LABEL, UNLABELED}
    assert state_after("create", frozenset({UNLABELED}), [LABEL], UNLABELED) == {LABEL, UNLABELED}
    assert state_after("create", EMPTY, [], UNLABELED) == {UNLABELED}
    full = frozenset({UNLABELED, PRIMARY, LABEL})
    assert state_after("archive", full, [LABEL], UNLABELED) == {UNLABELED, PRIMARY}
    # The unlabeled type cascades; no type at all is batch/archive: both empty the pair.
    assert state_after("archive", full, [UNLABELED], UNLABELED) == EMPTY
    assert state_after("archive", full, [], UNLABELED) == EMPTY


def test_writer_records_what_changed_and_a_resumed_writer_continues(tmp_path):
    ledger = Ledger(str(tmp_path / "l"))
    before = {("1", "2"): frozenset({UNLABELED})}
    ledger.save_before({"fingerprint": {"x": 1}}, before)
    writer = LedgerWriter(ledger, ledger.load_before(), UNLABELED, 1)
    writer.record("1", "2", [LABEL], "create")
    writer.record("3", "4", [LABEL], "create")
    writer.record("5", "6", [UNLABELED], "create")
    writer.flush()
    writer.flush()  # nothing pending: no empty part
    assert ledger.part_names() == ["changes-000000.csv.gz"]
    # A resumed try records the same pairs again (and one more): the last line wins, no duplicates.
    again = LedgerWriter(ledger, ledger.load_before(), UNLABELED, 1)
    again.resume()
    again.record("3", "4", [LABEL], "create")  # unchanged since the first try: no line
    again.record("3", "4", [PRIMARY], "create")
    again.flush()
    assert ledger.part_names() == ["changes-000000.csv.gz", "changes-000001.csv.gz"]
    entries = {(e.from_id, e.to_id): e for e in ledger.entries()}
    assert entries[("1", "2")].added == {LABEL} and entries[("1", "2")].before == {UNLABELED}
    assert entries[("3", "4")].added == {LABEL, PRIMARY, UNLABELED}
    assert entries[("5", "6")].added == {UNLABELED}
    removals, restores = inverse(entries.values(), {}, UNLABELED)
    # Nothing is there any more (say, removed by hand): nothing to remove, nothing to restore.
    assert (removals, restores) == ([], [])
    current = {key: entry.after for key, entry in entries.items()}
    removals, restores = inverse(entries.values(), current, UNLABELED)
    assert sorted(removals) == [("1", "2", (LABEL,)), ("3", "4", ()), ("5", "6", ())]
    assert restores == []


def test_a_resumed_writer_takes_a_late_read_pairs_before_state_from_its_change_line(tmp_path):
    # A pair read after before.csv.gz was saved (a stale cached key, resolved again) has its before
    # state only in its change line; a resumed try must record it alike, not as having had nothing.
    ledger = Ledger(str(tmp_path / "ledger"))
    ledger.save_before({"fingerprint": {}}, {})
    first = LedgerWriter(ledger, {("13", "702"): frozenset({PRIMARY, UNLABELED})}, UNLABELED, 2)
    first.record("13", "702", [LABEL], "create")
    first.flush()
    resumed = LedgerWriter(ledger, ledger.load_before(), UNLABELED, 2)
    resumed.resume()
    other = AssociationType("USER_DEFINED", 13)
    resumed.record("13", "702", [other], "create")  # a later row of the input, after the crash
    resumed.flush()
    (entry,) = ledger.entries()
    assert entry.before == {PRIMARY, UNLABELED}
    assert (entry.added, entry.removed) == ({LABEL, other}, EMPTY)


def test_inverse_restores_only_what_is_missing():
    from airflow_hubspot_assoc.ledger import LedgerEntry

    entry = LedgerEntry("1", "2", frozenset({UNLABELED, LABEL, PRIMARY}), EMPTY, frozenset({LABEL, PRIMARY}))
    assert inverse([entry], {("1", "2"): frozenset({UNLABELED})}, UNLABELED) == (
        [],
        [("1", "2", (PRIMARY, LABEL))],
    )
    assert inverse([entry], {("1", "2"): entry.before}, UNLABELED) == ([], [])


@pytest.mark.parametrize("pairs_per_part", [100])  # a part per batch of 100: the worst case
def test_ledger_is_at_most_32_bytes_a_changed_pair(tmp_path, pairs_per_part):
    rng = random.Random(14)
    location = tmp_path / "ledger"
    ledger = Ledger(str(location))

    def random_id() -> str:
        digits = rng.randrange(6, 10)
        return str(rng.randrange(10 ** (digits - 1), 10**digits))

    pairs = {(random_id(), random_id()) for _ in range(100_000)}
    # A third had the unlabeled association before (they are in the before file too).
    before = {pair: frozenset({UNLABELED}) for pair in list(pairs)[: len(pairs) // 3]}
    ledger.save_before({"fingerprint": {}}, before)
    writer = LedgerWriter(ledger, before, UNLABELED, 100)
    for number, (from_id, to_id) in enumerate(pairs, 1):
        writer.record(from_id, to_id, [LABEL], "create")
        if number % pairs_per_part == 0:
            writer.flush()
    writer.flush()
    size = sum(path.stat().st_size for path in location.iterdir())
    per_pair = size / len(pairs)
    print(f"ledger: {len(pairs):,} changed pairs, {size:,} bytes, {per_pair:.1f} bytes a pair")
    assert per_pair <= 32
    assert sum(1 for _ in ledger.entries()) == len(pairs)
