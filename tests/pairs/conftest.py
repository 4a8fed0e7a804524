"""Fixtures shared by the pair-reader tests: file writers and an in-memory object store."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from airflow_hubspot_assoc.pairs import InvalidRow, Pair, PairReader


def write_csv(
    path: Path, rows: list[tuple[object, ...]], header: tuple[str, ...] = ("from_id", "to_id")
) -> Path:
    """A CSV file written by the csv module, as a warehouse export would be."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_all(path: str | Path, **kwargs: str) -> list[Pair | InvalidRow]:
    """Every row of a path input, as the operator's validation pass sees it."""
    return list(PairReader.from_path(str(path), **kwargs))


def ids(rows: list[Pair | InvalidRow]) -> list[tuple[str | None, str | None]]:
    """The (from, to) ids of the rows, for compact assertions."""
    return [(row.from_id, row.to_id) for row in rows]


@pytest.fixture
def memory_bucket() -> Iterator[tuple[fsspec.AbstractFileSystem, str]]:
    """fsspec's process-wide memory filesystem and a fresh prefix in it, removed afterwards."""
    fs = fsspec.filesystem("memory")
    prefix = f"/bucket-{uuid.uuid4().hex[:8]}"
    yield fs, prefix
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)
