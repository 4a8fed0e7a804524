"""``BatchArchiveAssociationsOperator``: remove HubSpot associations in batches, with the create
operator's inputs and accounting.

Why it refuses so much before the first write: HubSpot cascades the removal of a pair's unlabeled
type to every labelled type between the two records, and ``batch/archive`` (no type at all) removes
them all; neither can be undone from the record. So only ``all_types=True`` lets an archive go that
far, and ``max_archives`` / ``max_archive_ratio`` stop an input larger than expected.
"""

from __future__ import annotations

from typing import Any

from airflow_hubspot_assoc.operators.base import BatchAssociationsOperatorBase

__all__ = ["BatchArchiveAssociationsOperator"]


class BatchArchiveAssociationsOperator(BatchAssociationsOperatorBase):
    """Archive (remove) HubSpot associations for pairs of record ids, in batches; account for every pair.

    Takes every argument of ``BatchCreateAssociationsOperator`` (``pairs`` or ``pairs_path`` in every
    format, id fields, ``association_type_id`` + ``association_category``, ``association_label``,
    per-row overrides, ``batch_size``, ``max_concurrency``, ``max_burst``, ``max_failed_ratio``,
    ``failed_pairs_path``, checkpoints, ``dry_run``, ``progress_interval``), with these meanings:

    * a label or a labelled type (the operator's or a row's): ``batch/labels/archive`` removes only
      those types; the pair's other associations stay.
    * the unlabeled type, or no type at all (``batch/archive``: every association between the pair):
      refused before any write unless ``all_types=True``, because HubSpot removes every labelled
      association of the pair with its unlabeled one.

    v4 answers 204 with no body (every pair of an accepted request counts as archived); dated
    versions answer 200 with ``errors`` naming the pairs that could not be archived (failed).

    :param all_types: allow removing every association of a pair (no type, or the unlabeled type)
    :param max_archives: fail before any write when more pairs than this would be archived
    :param max_archive_ratio: fail before any write when the pairs to archive exceed this share of
        the rows read (0 to 1)
    :return: the batch record with ``operation: "archive"`` and ``archived`` (``created`` is 0);
        ``sample`` holds archived pairs with the types removed, which the sensor checks are gone.
    """

    operation = "archive"

    def __init__(
        self,
        *,
        all_types: bool = False,
        max_archives: int | None = None,
        max_archive_ratio: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_archives is not None and (
            isinstance(max_archives, bool) or not isinstance(max_archives, int) or max_archives < 0
        ):
            raise ValueError(f"max_archives must be None or a non-negative integer, got {max_archives!r}")
        if max_archive_ratio is not None and (
            isinstance(max_archive_ratio, bool)
            or not isinstance(max_archive_ratio, int | float)
            or not 0.0 <= float(max_archive_ratio) <= 1.0
        ):
            raise ValueError(f"max_archive_ratio must be None or between 0 and 1, got {max_archive_ratio!r}")
        self.all_types = bool(all_types)
        self.max_archives = max_archives
        self.max_archive_ratio = None if max_archive_ratio is None else float(max_archive_ratio)

    def _load_settings(self) -> dict[str, Any]:
        return {
            "all_types": self.all_types,
            "max_writes": self.max_archives,
            "max_write_ratio": self.max_archive_ratio,
        }
