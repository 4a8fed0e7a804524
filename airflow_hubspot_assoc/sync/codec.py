"""How a snapshot stores one partition of triples compactly, and fast to decode.

A partition's records are sorted, so its from ids rise and, under one from id, its to ids rise:
store the gaps instead (small numbers, mostly zero high bytes), and the type codes. The three
columns are byte-transposed (all first bytes, then all second bytes...) so that the zero high bytes
form long runs, then ``zlib`` at level 1 (in the standard library; fast; the transposition, not the
level, does most of the work). Encoding and decoding are numpy passes and one zlib call: no Python
per triple.
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

from airflow_hubspot_assoc.sync.setfile import FIELDS, RECORD, Records

NAME = "delta-transpose-zlib1"


def max_type_code(records: Records) -> np.int64:
    """The largest type code of non-empty records."""
    return np.int64(records.view(FIELDS)["type_code"].max())


def encode(records: Records) -> bytes:
    """A block of sorted, unique records."""
    if records.size == 0:
        return b""
    fields = records.view(FIELDS)
    from_ids = fields["from_id"].astype(np.int64)
    to_ids = fields["to_id"].astype(np.int64)
    from_gaps = np.diff(from_ids, prepend=np.int64(0))
    to_gaps = np.diff(to_ids, prepend=np.int64(0))
    starts = from_gaps != 0  # the first record of each from id: its to id is stored whole
    to_gaps[starts] = to_ids[starts]
    columns = np.stack((from_gaps, to_gaps, fields["type_code"].astype(np.int64)))
    transposed = columns.astype("<i8").view(np.uint8).reshape(3, -1, 8).transpose(0, 2, 1)
    return zlib.compress(np.ascontiguousarray(transposed).tobytes(), 1)


def decode(block: bytes, count: int) -> Records:
    """The ``count`` records of a block made by ``encode``."""
    if count == 0:
        return np.empty(0, dtype=RECORD)
    try:
        raw = np.frombuffer(zlib.decompress(block), dtype=np.uint8)
    except zlib.error as err:
        raise ValueError(f"a snapshot block is damaged ({err})") from err
    if raw.size != count * 24:
        raise ValueError(f"a snapshot block holds {raw.size} bytes, not {count} triples")
    columns = np.ascontiguousarray(raw.reshape(3, 8, count).transpose(0, 2, 1)).view("<i8")
    from_gaps, to_gaps, type_codes = columns.reshape(3, count)
    from_ids = np.cumsum(from_gaps)
    starts = from_gaps != 0
    # A running sum of whole to ids overflows; in uint64 it wraps, and the difference is still right.
    gaps = to_gaps.view(np.uint64)
    running = np.cumsum(gaps)
    before = running - gaps  # the sum of the gaps before each record
    group = np.cumsum(starts) - 1
    to_ids: npt.NDArray[np.uint64] = running - before[np.flatnonzero(starts)][group]
    records = np.empty(count, dtype=FIELDS)
    records["from_id"], records["to_id"], records["type_code"] = from_ids, to_ids, type_codes
    return records.view(RECORD)
