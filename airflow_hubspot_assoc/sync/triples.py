"""Sets of association triples on local disk, and the set operations a sync needs, in bulk.

A sync works on triples ``(from_id, to_id, type_code)``: HubSpot record ids after business keys are
resolved, and a small code for one association type. What to create is ``desired - snapshot``, what
to remove (mirror mode) ``snapshot - desired``; at 10 million pairs neither Python sets (a few hundred
bytes a triple) nor a Python loop per triple (seconds per 10 million) will do. So:

- ``TripleSpool`` collects triples with bounded memory: a buffer of at most ``memory_budget`` bytes,
  grouped by partition and spilled to a run file when full. ``close()`` reads each partition from
  every run, sorts it and drops duplicates, and writes one ``TripleSet``.
- ``TripleSet`` is an immutable, sorted, deduplicated set in one file (layout: ``setfile``): 24-byte
  records in hash partitions of the from id. Set operations go partition by partition (the same hash
  for every set), so memory holds two partitions at a time, and each partition is done with numpy
  (``np.sort`` and ``np.searchsorted`` on records that compare as byte strings): no Python per triple.
- Iteration yields tuples in ascending order (a merge of the partitions, read in chunks): meant for
  the small sets of changes, not for whole snapshots.

Files live under the ``workdir`` given; the caller owns that folder and removes it when done.
"""

from __future__ import annotations

import heapq
import itertools
import shutil
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from airflow_hubspot_assoc.sync import setfile
from airflow_hubspot_assoc.sync.setfile import PARTITIONS, RECORD, Records

Triple = tuple[int, int, int]  # (from_id, to_id, type_code)

#: Bytes of memory one buffered triple may need while a run is spilled (the record, the buffers joined,
#: the copy in partition order, the partition byte and the sort's index), to turn ``memory_budget``
#: into a number of triples.
_BYTES_PER_BUFFERED = 3 * RECORD.itemsize + 8
_ITER_CHUNK = 4096
_MANY_CHUNK = 65_536
_MAX_ID = setfile.MAX_ID


class TripleSet:
    """An immutable, sorted, deduplicated set of triples on local disk (hash partitions, sorted)."""

    def __init__(self, path: Path) -> None:
        """Open a set file written by this module (``TripleSpool.close``, the set operations)."""
        self.path = path
        self._counts = setfile.read_header(path)
        self._starts = np.concatenate(([0], np.cumsum(self._counts)[:-1])).astype(np.int64)
        self.count: int = int(self._counts.sum())

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"TripleSet({self.count} triples, {self.path})"

    def __iter__(self) -> Iterator[Triple]:
        """The triples in ascending (from_id, to_id, type_code) order."""
        return heapq.merge(*(self._rows(p) for p in range(PARTITIONS) if self._counts[p]))

    def from_ids(self) -> Iterator[int]:
        """The distinct from ids, ascending (a from id lives in one partition only).

        Held as numpy (8 bytes an id) and made Python ints a chunk at a time: the ids in scope of a
        reconcile can be millions.
        """
        distinct = [np.unique(setfile.from_column(self.partition(p))) for p in range(PARTITIONS)]
        ids = np.sort(np.concatenate(distinct))
        for start in range(0, ids.size, _ITER_CHUNK):
            yield from ids[start : start + _ITER_CHUNK].tolist()

    def partition(self, index: int) -> Records:
        """Partition ``index``: records, sorted and free of duplicates."""
        return setfile.read_records(self.path, int(self._starts[index]), int(self._counts[index]))

    def partition_counts(self) -> npt.NDArray[np.int64]:
        """The number of triples in each partition."""
        return self._counts.copy()

    def remove(self) -> None:
        """Delete the set's file (the object must not be used after)."""
        self.path.unlink(missing_ok=True)

    def _rows(self, index: int) -> Iterator[Triple]:
        start, count = int(self._starts[index]), int(self._counts[index])
        for offset in range(0, count, _ITER_CHUNK):
            chunk = setfile.read_records(self.path, start + offset, min(_ITER_CHUNK, count - offset))
            for row in setfile.unpack(chunk).tolist():
                yield (row[0], row[1], row[2])

    @classmethod
    def empty(cls, workdir: Path) -> TripleSet:
        """A set with no triples."""
        return cls.from_partitions(workdir, [])

    @classmethod
    def from_triples(cls, workdir: Path, triples: Iterable[Triple]) -> TripleSet:
        """A set of the given triples (any order, duplicates allowed)."""
        spool = TripleSpool(workdir)
        spool.add_many(triples)
        return spool.close()

    @classmethod
    def from_partitions(cls, workdir: Path, partitions: Iterable[Records]) -> TripleSet:
        """A set from its partitions in order, each sorted and free of duplicates (not checked)."""
        writer = setfile.SetWriter(workdir)
        try:
            for records in partitions:
                writer.add(records)
        except BaseException:
            writer.abort()
            raise
        path, _ = writer.close()
        return cls(path)


class TripleSpool:
    """Collects triples (any order, duplicates allowed) into a temporary folder on local disk with
    bounded memory.

    ``memory_budget`` is what the buffer may take, spill included (``_BYTES_PER_BUFFERED`` a triple),
    before it is written as a run; ``close()`` then needs one partition of the whole at a time.
    Per triple, ``add`` is the slowest way in, ``add_many`` faster, and ``add_columns`` (numpy or
    Arrow columns) the fastest: checked and packed in bulk.
    """

    def __init__(self, workdir: Path, *, memory_budget: int = 256 * 2**20) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self._workdir = workdir
        self._folder = Path(tempfile.mkdtemp(prefix="spool-", dir=workdir))
        self._capacity = max(1024, memory_budget // _BYTES_PER_BUFFERED)
        # Triples added one by one, interleaved: one ``extend`` per triple is the cheapest Python
        # can do (``add`` is the sync operator's per-row path).
        self._flat = array("q")
        self._chunks: list[Records] = []  # triples added in bulk, packed
        self._chunked = 0
        self._flat_limit = 3 * self._capacity
        self._runs: list[tuple[Path, npt.NDArray[np.int64]]] = []
        self._closed = False

    def add(self, from_id: int, to_id: int, type_code: int) -> None:
        """Add one triple: ids in 1..2^63-1, a type code >= 0 (``ValueError`` otherwise)."""
        if self._closed:
            self._check_open()
        if not (0 < from_id <= _MAX_ID and 0 < to_id <= _MAX_ID and 0 <= type_code <= _MAX_ID):
            if not (0 < from_id <= _MAX_ID and 0 < to_id <= _MAX_ID):
                raise ValueError(f"record ids must be in 1..2^63-1, got ({from_id}, {to_id})")
            raise ValueError(f"a type code must be >= 0, got {type_code}")
        flat = self._flat
        size = len(flat)
        try:
            flat.extend((from_id, to_id, type_code))
        except TypeError as err:  # a float or another non-integer: drop what was appended of it
            del flat[size:]
            raise ValueError(f"a triple must be three integers, got {(from_id, to_id, type_code)}") from err
        if size + 3 >= self._flat_limit:
            self._spill()

    def add_many(self, triples: Iterable[Triple] | npt.NDArray[Any]) -> None:
        """Add triples: an iterable of ``(from_id, to_id, type_code)``, or an ``(n, 3)`` integer array.

        Both are checked and buffered in bulk (an iterable in chunks of ``_MANY_CHUNK``), which costs
        less per triple than ``add``.
        """
        if isinstance(triples, np.ndarray):
            if triples.ndim != 2 or triples.shape[1] != 3:
                raise ValueError(f"expected an (n, 3) array of triples, got shape {triples.shape}")
            self.add_columns(triples[:, 0], triples[:, 1], triples[:, 2])
            return
        iterator = iter(triples)
        while chunk := list(itertools.islice(iterator, _MANY_CHUNK)):
            try:
                # No dtype: a forced int64 would truncate floats silently; ints give int64.
                rows = np.array(chunk)
            except (ValueError, OverflowError):
                rows = np.empty(0)
            if rows.ndim != 2 or rows.shape[1] != 3 or rows.dtype.kind not in "iu":
                raise ValueError(_first_refusal(chunk))
            self.add_many(rows)

    def add_columns(self, from_ids: npt.ArrayLike, to_ids: npt.ArrayLike, type_codes: npt.ArrayLike) -> None:
        """Add triples given as three integer columns of equal length (numpy or Arrow arrays, lists)."""
        self._check_open()
        records = setfile.pack(
            np.asarray(from_ids, dtype=None), np.asarray(to_ids, dtype=None), np.asarray(type_codes)
        )
        for start in range(0, records.size, self._capacity):
            part = records[start : start + self._capacity]
            self._chunks.append(part)
            self._chunked += part.size
            if self._chunked + len(self._flat) // 3 >= self._capacity:
                self._spill()
        self._flat_limit = 3 * max(1, self._capacity - self._chunked)

    def close(self) -> TripleSet:
        """Sort and deduplicate everything added into one ``TripleSet``; the spool cannot be used after."""
        self._check_open()
        self._spill()
        self._closed = True
        try:
            return TripleSet.from_partitions(self._workdir, self._merged_partitions())
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _merged_partitions(self) -> Iterator[Records]:
        for index in range(PARTITIONS):
            pieces = [self._read_run(run, index) for run in self._runs]
            merged = np.concatenate(pieces) if pieces else np.empty(0, dtype=RECORD)
            yield setfile.sort_unique(merged)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this TripleSpool is closed; start a new one")

    def _spill(self) -> None:
        if self._flat:
            columns = np.frombuffer(self._flat, dtype=np.int64).reshape(-1, 3)
            self._chunks.append(setfile.pack(columns[:, 0], columns[:, 1], columns[:, 2]))
            self._flat = array("q")
        if not self._chunks:
            return
        records = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = []
        self._chunked = 0
        self._flat_limit = 3 * self._capacity
        grouped, counts = setfile.split_by_partition(records)
        path = self._folder / f"run-{len(self._runs):06d}.bin"
        grouped.tofile(path)
        self._runs.append((path, counts))

    @staticmethod
    def _read_run(run: tuple[Path, npt.NDArray[np.int64]], index: int) -> Records:
        path, counts = run
        start, count = int(counts[:index].sum()), int(counts[index])
        if count == 0:
            return np.empty(0, dtype=RECORD)
        return np.fromfile(path, dtype=RECORD, count=count, offset=start * RECORD.itemsize)


def _first_refusal(chunk: list[Any]) -> str:
    """Why a chunk of triples cannot be added, naming the first bad triple (the error path only)."""
    for triple in chunk:
        if not isinstance(triple, tuple | list) or len(triple) != 3:
            return f"a triple must be three integers, got {triple!r}"
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in triple):
            return f"a triple must be three integers, got {tuple(triple)!r}"
        from_id, to_id, type_code = triple
        if not (0 < from_id <= _MAX_ID and 0 < to_id <= _MAX_ID):
            return f"record ids must be in 1..2^63-1, got ({from_id}, {to_id})"
        if not 0 <= type_code <= _MAX_ID:
            return f"a type code must be >= 0, got {type_code}"
    return "triples must be three integers each"


def _found(needles: Records, haystack: Records) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """Which sorted ``needles`` are in the sorted ``haystack``, and where each would go in it."""
    where = np.searchsorted(haystack, needles)
    if haystack.size == 0:
        return np.zeros(needles.size, dtype=bool), where
    found = haystack[np.minimum(where, haystack.size - 1)] == needles
    return found, where


def _membership(x: Records, y: Records) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Which records of ``x`` are in ``y``, and which of ``y`` are in ``x``.

    The smaller side is searched in the larger (a run's changes against a whole snapshot are the
    usual case), and the search's positions mark the larger side: one search serves both.
    """
    small, large = (x, y) if x.size <= y.size else (y, x)
    found, where = _found(small, large)
    in_large = np.zeros(large.size, dtype=bool)
    in_large[where[found]] = True
    return (found, in_large) if x.size <= y.size else (in_large, found)


def _difference(x: Records, y: Records) -> Records:
    return x[~_membership(x, y)[0]]


def _intersection(x: Records, y: Records) -> Records:
    return x[_membership(x, y)[0]]


def _union(x: Records, y: Records) -> Records:
    # Both are sorted and unique: insert the records of the smaller that the larger lacks at their
    # places, instead of sorting both again (a snapshot plus a day's creates).
    small, large = (x, y) if x.size <= y.size else (y, x)
    found, where = _found(small, large)
    return np.insert(large, where[~found], small[~found])


def difference(a: TripleSet, b: TripleSet, workdir: Path) -> TripleSet:
    """a - b."""
    return TripleSet.from_partitions(workdir, _pairwise(a, b, _difference))


def intersection(a: TripleSet, b: TripleSet, workdir: Path) -> TripleSet:
    """a & b (the triples of both)."""
    return TripleSet.from_partitions(workdir, _pairwise(a, b, _intersection))


def union(a: TripleSet, b: TripleSet, workdir: Path) -> TripleSet:
    """a | b (every triple of either)."""
    return TripleSet.from_partitions(workdir, _pairwise(a, b, _union))


def _pairwise(a: TripleSet, b: TripleSet, operation: Any) -> Iterator[Records]:
    for index in range(PARTITIONS):
        yield operation(a.partition(index), b.partition(index))


@dataclass(frozen=True)
class Diff:
    """Both anti-joins of two sets, and the size of their intersection."""

    only_a: TripleSet  # a - b   (desired - base: to create)
    only_b: TripleSet  # b - a   (base - desired: candidates to remove)
    common: int  # |a & b| (unchanged)


def diff(a: TripleSet, b: TripleSet, workdir: Path) -> Diff:
    """``a - b``, ``b - a`` and ``|a & b|`` in one pass (one search per partition serves both sides)."""
    only_a, only_b = setfile.SetWriter(workdir), setfile.SetWriter(workdir)
    common = 0
    try:
        for index in range(PARTITIONS):
            x, y = a.partition(index), b.partition(index)
            x_in_y, y_in_x = _membership(x, y)
            only_a.add(x[~x_in_y])
            only_b.add(y[~y_in_x])
            common += int(np.count_nonzero(x_in_y))
    except BaseException:
        only_a.abort()
        only_b.abort()
        raise
    return Diff(TripleSet(only_a.close()[0]), TripleSet(only_b.close()[0]), common)
