"""Input files for the benchmarks: CSVs of distinct, valid pairs, generated once and reused.

The files live under ``benchmarks/results/data`` (gitignored): 5,000,000 pairs are about 130 MB,
too big for the repository and quick to regenerate. Ids look like real HubSpot record ids (11 to 12
digits) so that parsing and validation cost what they cost in production, and every pair is
distinct so that no pair is dropped as a duplicate and every one costs a full trip.
"""

from __future__ import annotations

import os
from pathlib import Path

HEADER = "from_id,to_id\n"
_FROM_BASE = 51_000_000_001
_TO_BASE = 93_000_000_001
_CHUNK = 50_000


def pair_ids(index: int) -> tuple[int, int]:
    """The ids of pair number ``index``: a cheap permutation, so neighbours do not share a from id."""
    return _FROM_BASE + index, _TO_BASE + (index * 7_919) % 10_000_019


def csv_path(directory: Path, pairs: int) -> Path:
    """Where the CSV of ``pairs`` pairs lives."""
    return directory / f"pairs-{pairs}.csv"


def ensure_csv(directory: Path, pairs: int) -> Path:
    """Write the CSV of ``pairs`` pairs unless a complete one is already there; return its path.

    The file is written to a temporary name and renamed, so an interrupted run never leaves a short
    file that a later run would mistake for a complete one.
    """
    path = csv_path(directory, pairs)
    marker = path.with_suffix(".csv.complete")
    if path.exists() and marker.exists() and marker.read_text().strip() == str(path.stat().st_size):
        return path
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".csv.partial-{os.getpid()}")
    with partial.open("w", encoding="ascii", newline="") as fh:
        fh.write(HEADER)
        for start in range(0, pairs, _CHUNK):
            stop = min(pairs, start + _CHUNK)
            fh.write("".join("%d,%d\n" % pair_ids(i) for i in range(start, stop)))  # noqa: UP031 - fastest
    partial.replace(path)
    marker.write_text(str(path.stat().st_size))
    return path


#: Business keys of the ``key_resolution`` scenario: contact ``n`` has email ``user{n}@bench.example``
#: and record id ``n + 1``; company ``k`` has ``external_id`` ``E-{k:06d}`` and record id
#: ``COMPANY_FIRST_ID + k`` (the stand-in seeds both with ``GeneratedRecords``).
EMAIL_TEMPLATE = "user{n}@bench.example"
EXTERNAL_ID_TEMPLATE = "E-{n:06d}"
COMPANY_FIRST_ID = 1_000_001


def key_pair(index: int, pairs: int, contacts: int, companies: int) -> tuple[int, int]:
    """Contact and company numbers of pair ``index``: every contact and every company used, and no
    pair twice (a contact's rows reach companies ``step`` apart)."""
    rounds = -(-pairs // contacts)
    step = max(1, companies // rounds)
    return index % contacts, (index % companies + (index // contacts) * step) % companies


def ensure_keys_csv(
    directory: Path, pairs: int, contacts: int, companies: int, *, from_keys: bool, to_keys: bool
) -> Path:
    """The CSV (``from_id,to_id``) of ``pairs`` pairs over ``contacts`` x ``companies``, each side as
    its business key (email, external_id) or its record id; written once, like ``ensure_csv``."""
    kinds = f"{'email' if from_keys else 'id'}-{'extid' if to_keys else 'id'}"
    path = directory / f"keys-{pairs}-{contacts}-{companies}-{kinds}.csv"
    marker = path.with_suffix(".csv.complete")
    if path.exists() and marker.exists() and marker.read_text().strip() == str(path.stat().st_size):
        return path
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".csv.partial-{os.getpid()}")
    with partial.open("w", encoding="ascii", newline="") as fh:
        fh.write(HEADER)
        for start in range(0, pairs, _CHUNK):
            lines = []
            for index in range(start, min(pairs, start + _CHUNK)):
                contact, company = key_pair(index, pairs, contacts, companies)
                left = EMAIL_TEMPLATE.format(n=contact) if from_keys else str(contact + 1)
                right = EXTERNAL_ID_TEMPLATE.format(n=company) if to_keys else str(COMPANY_FIRST_ID + company)
                lines.append(f"{left},{right}\n")
            fh.write("".join(lines))
    partial.replace(path)
    marker.write_text(str(path.stat().st_size))
    return path
