"""Reading a batch back from HubSpot: what to wait for, and the chunked check (sensor and trigger).

- :mod:`.matching`: judging one batch read (pure);
- :mod:`.expected`: which pairs a batch record says should be visible (may read files; worker only);
- :mod:`.engine`: the check over missing and unread pairs, one sans-I/O step with a sync and an async
  driver, and the trigger's encoding of missing pairs.

May import ``record``, ``association_types``, ``constants``, ``api``, ``exceptions``, ``batches`` and
``pairs``; never ``hooks``, ``sensors``, ``triggers``, ``operators``, ``load``, ``assets`` or
``lineage``: the reads come in as functions (the hook's ``read_associations`` /
``aread_associations``). Airflow itself only through the error tree and, lazily,
``ObjectStoragePath`` for a failed-pairs file on object storage.
"""

from __future__ import annotations

from airflow_hubspot_assoc.readback.engine import TRANSIENT_ERRORS, ReadBack, decode_pairs, encode_pairs
from airflow_hubspot_assoc.readback.expected import VERIFY_MODES, ExpectedPairs, failed_pairs_of
from airflow_hubspot_assoc.readback.matching import (
    MISSING_SAMPLE_LIMIT,
    CheckResult,
    FailedPairs,
    MissingPair,
    check_pairs,
    chunk_by_from_ids,
    describe_missing,
    progress_text,
)

__all__ = [
    "MISSING_SAMPLE_LIMIT",
    "TRANSIENT_ERRORS",
    "VERIFY_MODES",
    "CheckResult",
    "ExpectedPairs",
    "FailedPairs",
    "MissingPair",
    "ReadBack",
    "check_pairs",
    "chunk_by_from_ids",
    "decode_pairs",
    "describe_missing",
    "encode_pairs",
    "failed_pairs_of",
    "progress_text",
]
