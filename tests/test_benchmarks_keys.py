"""The ``key_resolution`` benchmark's input: every contact and company used, no pair twice, and each
side written as its key or its record id as asked (the stand-in seeds the same keys)."""

from __future__ import annotations

import csv

from benchmarks.data import COMPANY_FIRST_ID, ensure_keys_csv, key_pair
from benchmarks.key_resolution import _seeded


def test_key_pairs_are_distinct_and_cover_every_record():
    for pairs, contacts, companies in ((20_000, 2_000, 500), (1_000, 1_000, 50), (30_000, 1_000, 7_000)):
        drawn = [key_pair(i, pairs, contacts, companies) for i in range(pairs)]
        assert len(set(drawn)) == pairs
        assert {c for c, _ in drawn} == set(range(contacts))
        assert {k for _, k in drawn} == set(range(min(companies, pairs)))


def test_keys_csv_writes_keys_or_ids_and_matches_the_seeded_records(tmp_path):
    keyed = ensure_keys_csv(tmp_path, 300, 100, 30, from_keys=True, to_keys=True)
    by_id = ensure_keys_csv(tmp_path, 300, 100, 30, from_keys=False, to_keys=False)
    rows = list(csv.reader(keyed.open()))
    ids = list(csv.reader(by_id.open()))
    assert rows[0] == ids[0] == ["from_id", "to_id"] and len(rows) == len(ids) == 301
    assert rows[8] == ["user7@bench.example", "E-000007"] and ids[8] == ["8", str(COMPANY_FIRST_ID + 7)]
    assert ensure_keys_csv(tmp_path, 300, 100, 30, from_keys=True, to_keys=True) == keyed  # reused
    seeded = _seeded({}, 100, 30)["generated_records"]
    assert seeded[0]["properties"]["email"].format(n=7) == "user7@bench.example"
    assert seeded[1]["first_id"] + 7 == COMPANY_FIRST_ID + 7
