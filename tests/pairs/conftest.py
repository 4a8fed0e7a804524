"""Fixtures shared by the pair-reader tests (their helpers, such as ``write_csv``, are in helpers.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import fsspec
import pytest


@pytest.fixture
def memory_bucket() -> Iterator[tuple[fsspec.AbstractFileSystem, str]]:
    """fsspec's process-wide memory filesystem and a fresh prefix in it, removed afterwards."""
    fs = fsspec.filesystem("memory")
    prefix = f"/bucket-{uuid.uuid4().hex[:8]}"
    yield fs, prefix
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)
