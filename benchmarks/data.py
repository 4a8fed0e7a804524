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
