"""The on-disk layout of a set of triples: fixed-width records in hash partitions of the from id.

Why this layout: a sync compares sets of millions of triples, more than should sit in a worker's
memory at once, and a Python object per triple costs seconds per 10 million. So a triple is a
24-byte record of three big-endian int64s (from_id, to_id, type_code), and numpy handles records in
bulk. Because every value is non-negative, comparing records as byte strings (numpy's ``S24``)
orders them exactly as the tuples, so one ``np.sort`` / ``np.searchsorted`` on a 1-D array does what
``lexsort`` over three columns would do, for less (``make bench``'s ``sync_diff`` measures the whole).

Records are spread over ``PARTITIONS`` partitions by a hash of the from id, the same function for
every set, so partition ``p`` of one set only ever meets partition ``p`` of another: a set
operation holds two partitions in memory at a time, not two sets. Each partition is sorted and
free of duplicates. A set file is a header (magic, partition count, count per partition) followed by
the partitions in order.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

#: One triple as a byte string that sorts like the (from_id, to_id, type_code) tuple.
RECORD = np.dtype("S24")
#: The same bytes as three named big-endian int64 fields, to pack and unpack columns.
FIELDS = np.dtype([("from_id", ">i8"), ("to_id", ">i8"), ("type_code", ">i8")])
PARTITIONS = 256
_MAGIC = b"HSTRIPS1"
_HEADER = struct.Struct("<8sII")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads consecutive ids evenly
_SHIFT = np.uint64(64 - 8)
MAX_ID = 2**63 - 1

Records = npt.NDArray[np.bytes_]
Ints = npt.NDArray[np.int64]


def partition_of(from_ids: Ints) -> npt.NDArray[np.uint8]:
    """The partition of each from id (a multiplicative hash; the top 8 bits of the product)."""
    hashed = (from_ids.astype(np.uint64) * _GOLDEN) >> _SHIFT
    return hashed.astype(np.uint8)


def pack(from_ids: Ints, to_ids: Ints, type_codes: Ints) -> Records:
    """Records from three columns of equal length, checked: ids in 1..2^63-1, type codes >= 0."""
    columns = [np.asarray(c) for c in (from_ids, to_ids, type_codes)]
    for name, column in zip(FIELDS.names or (), columns, strict=True):
        if column.ndim != 1 or column.shape != columns[0].shape:
            raise ValueError(f"{name}: expected a 1-D column of {columns[0].shape[0]} values")
        if column.size and column.dtype.kind not in "iu":
            raise ValueError(f"{name}: expected integers, got {column.dtype}")
        if column.size and column.dtype.kind == "u" and int(column.max()) > MAX_ID:
            raise ValueError(f"{name}: {int(column.max())} is above 2^63 - 1")
        low = 0 if name == "type_code" else 1
        if column.size and int(column.min()) < low:
            raise ValueError(f"{name}: {int(column.min())} is below {low}")
    packed = np.empty(columns[0].shape[0], dtype=FIELDS)
    packed["from_id"], packed["to_id"], packed["type_code"] = columns
    return packed.view(RECORD)


def unpack(records: Records) -> Ints:
    """An ``(n, 3)`` native int64 array of the records' (from_id, to_id, type_code)."""
    return records.view(">i8").reshape(-1, 3).astype(np.int64)


def from_column(records: Records) -> Ints:
    """The from ids of records, native int64."""
    return records.view(FIELDS)["from_id"].astype(np.int64)


def sort_unique(records: Records) -> Records:
    """The records sorted, each once."""
    ordered = np.sort(records)
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def split_by_partition(records: Records) -> tuple[Records, npt.NDArray[np.int64]]:
    """The records grouped by partition (partition order, stable), and the count of each partition."""
    parts = partition_of(records.view(FIELDS)["from_id"])
    order = np.argsort(parts, kind="stable")  # a radix sort for one byte
    counts = np.bincount(parts, minlength=PARTITIONS).astype(np.int64)
    return records[order], counts


class SetWriter:
    """Writes a set file partition by partition, in order; the header is written last."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.path = workdir / f"triples-{uuid.uuid4().hex}.set"
        self._file: IO[bytes] = self.path.open("wb")
        self._counts: list[int] = []
        self._file.write(b"\0" * header_size())

    def add(self, records: Records) -> None:
        """Append the next partition: sorted and free of duplicates (the caller's promise)."""
        if len(self._counts) >= PARTITIONS:
            raise ValueError("all partitions are already written")
        self._file.write(np.ascontiguousarray(records, dtype=RECORD).tobytes())
        self._counts.append(int(records.size))

    def abort(self) -> None:
        """Give up: close and delete the unfinished file (a failure half-way leaves nothing behind)."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> tuple[Path, npt.NDArray[np.int64]]:
        """Finish the file. :return: its path and the count of each partition."""
        self._counts.extend([0] * (PARTITIONS - len(self._counts)))
        counts = np.asarray(self._counts, dtype=np.int64)
        self._file.seek(0)
        self._file.write(_HEADER.pack(_MAGIC, PARTITIONS, 0) + counts.astype("<i8").tobytes())
        self._file.close()
        return self.path, counts


def header_size() -> int:
    return _HEADER.size + 8 * PARTITIONS


def read_header(path: Path) -> npt.NDArray[np.int64]:
    """The count of each partition of a set file."""
    with path.open("rb") as handle:
        magic, partitions, _ = _HEADER.unpack(handle.read(_HEADER.size))
        if magic != _MAGIC or partitions != PARTITIONS:
            raise ValueError(f"{path} is not a set of triples of this version")
        return np.frombuffer(handle.read(8 * PARTITIONS), dtype="<i8").astype(np.int64)


def read_records(path: Path, start: int, count: int) -> Records:
    """``count`` records of a set file from record number ``start`` (0 = the first after the header)."""
    if count == 0:
        return np.empty(0, dtype=RECORD)
    return np.fromfile(path, dtype=RECORD, count=count, offset=header_size() + start * RECORD.itemsize)
