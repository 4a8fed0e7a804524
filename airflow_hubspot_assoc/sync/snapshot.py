"""The snapshot of what a sync last applied: a ``TripleSet`` and its metadata in one object.

One object, written whole (``storage.replace_binary``: a rename on local disk, one upload on object
storage), so a reader sees the old snapshot or the new one, never a mix, and no lock is needed.

Layout: ``MAGIC``, the length of the header (8 bytes, little-endian), the header (JSON:
``SnapshotMeta`` plus the codec and each partition's number of triples), then per partition the
length of its block (8 bytes) and the block. The header comes first so that ``read_snapshot_meta``
reads a few kilobytes, not the triples. Blocks are encoded by ``codec`` (see there why).
"""

from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.sync import codec
from airflow_hubspot_assoc.sync.setfile import PARTITIONS, Records
from airflow_hubspot_assoc.sync.triples import TripleSet

MAGIC = b"HSSNAP01"
_LENGTH = struct.Struct("<Q")
#: A header is a few kilobytes; a bigger length means a damaged or foreign file.
_MAX_HEADER = 2**20
#: What ``read_snapshot_meta`` fetches per request from object storage: a header is a few kilobytes.
_HEADER_READ = 64 * 2**10


@dataclass(frozen=True)
class SnapshotMeta:
    """What a snapshot's triples mean and where they come from."""

    generation: int  # increases by 1 with every snapshot written for a state_path
    types: tuple[tuple[str, int], ...]  # type table: code i -> (associationCategory, associationTypeId)
    from_object_type: str
    to_object_type: str
    portal: str | None
    pairs: int  # number of triples
    created_at: str  # ISO 8601 UTC

    def to_json(self) -> dict[str, Any]:
        """The meta as plain JSON values."""
        values = dataclasses.asdict(self)
        values["types"] = [list(entry) for entry in self.types]
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> SnapshotMeta:
        """The meta from ``to_json``'s values; ``ValueError`` naming the bad key."""
        try:
            types = tuple((str(category), int(type_id)) for category, type_id in values["types"])
            return cls(
                generation=int(values["generation"]),
                types=types,
                from_object_type=str(values["from_object_type"]),
                to_object_type=str(values["to_object_type"]),
                portal=None if values["portal"] is None else str(values["portal"]),
                pairs=int(values["pairs"]),
                created_at=str(values["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"snapshot meta is not valid ({type(err).__name__}: {err})") from err


def write_snapshot(location: str, triples: TripleSet, meta: SnapshotMeta) -> int:
    """Write ``triples`` and ``meta`` as one object at ``location`` (local path or object-storage URL).

    :return: the bytes written.
    """
    if meta.pairs != triples.count:
        raise ValueError(f"meta.pairs is {meta.pairs} but the set has {triples.count} triples")
    header = json.dumps(
        {"meta": meta.to_json(), "codec": codec.NAME, "counts": triples.partition_counts().tolist()},
        separators=(",", ":"),
    ).encode("utf-8")
    written = 0
    with storage.replace_binary(location) as handle:
        for piece in (MAGIC, _LENGTH.pack(len(header)), header):
            written += _write(handle, piece)
        for index in range(PARTITIONS):
            records = triples.partition(index)
            if records.size and int(codec.max_type_code(records)) >= len(meta.types):
                raise ValueError(
                    f"type code {int(codec.max_type_code(records))} has no entry in the type table "
                    f"of {len(meta.types)} types"
                )
            block = codec.encode(records)
            written += _write(handle, _LENGTH.pack(len(block)))
            written += _write(handle, block)
    return written


def read_snapshot(location: str, workdir: Path) -> tuple[TripleSet, SnapshotMeta]:
    """The snapshot's triples (as a ``TripleSet`` under ``workdir``) and meta.

    ``FileNotFoundError`` when there is no snapshot at ``location``.
    """
    with storage.open_binary(location) as handle:
        header = _read_header(handle, location)
        meta = SnapshotMeta.from_json(header["meta"])
        counts = [int(count) for count in header["counts"]]
        if header.get("codec") != codec.NAME or len(counts) != PARTITIONS:
            raise ValueError(f"{location}: codec {header.get('codec')!r} with {len(counts)} partitions")

        def partitions() -> Any:
            for count in counts:
                (length,) = _LENGTH.unpack(_read_exactly(handle, _LENGTH.size, location))
                records: Records = codec.decode(_read_exactly(handle, length, location), count)
                yield records

        triples = TripleSet.from_partitions(workdir, partitions())
    if triples.count != meta.pairs:
        triples.remove()
        raise ValueError(f"{location}: {triples.count} triples but the meta says {meta.pairs}")
    return triples, meta


def read_snapshot_meta(location: str) -> SnapshotMeta:
    """The snapshot's meta, reading only its header. ``FileNotFoundError`` when it is absent."""
    with storage.open_binary(location, block_size=_HEADER_READ) as handle:
        return SnapshotMeta.from_json(_read_header(handle, location)["meta"])


def _read_header(handle: IO[bytes], location: str) -> dict[str, Any]:
    if _read_exactly(handle, len(MAGIC), location) != MAGIC:
        raise ValueError(f"{location} is not a sync snapshot (or one of another version)")
    (length,) = _LENGTH.unpack(_read_exactly(handle, _LENGTH.size, location))
    if length > _MAX_HEADER:
        raise ValueError(f"{location}: a header of {length} bytes; the file is damaged")
    header: dict[str, Any] = json.loads(_read_exactly(handle, length, location))
    return header


def _read_exactly(handle: IO[bytes], size: int, location: str) -> bytes:
    chunks, left = [], size
    while left:
        chunk = handle.read(left)
        if not chunk:
            raise ValueError(f"{location} ends early: the snapshot is truncated")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write(handle: IO[bytes], data: bytes) -> int:
    handle.write(data)
    return len(data)
