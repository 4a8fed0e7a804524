"""Checks that refuse a load before its first write: how much it would write, and what an archive
would take away beyond what the input names.

Why a module of its own: these are decisions on counts and on the object pair's association types,
made once the validate pass has read the whole input; the load calls them, the operators only pass
the limits. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_hubspot_assoc.exceptions import HubSpotConfigError

#: What a load's batches can do.
OPERATIONS = ("create", "archive")


def check_write_limits(
    operation: str, valid: int, total: int, max_writes: int | None, max_write_ratio: float | None
) -> None:
    """Refuse an input that would write more pairs than ``max_writes`` or ``max_write_ratio`` of its rows.

    ``valid`` counts rows before duplicates are dropped (finding those needs the send pass), so it is
    the most that would be written. The error says how many would go.
    """
    archive = operation == "archive"
    verb = "archived" if archive else "written"
    name, ratio_name = ("max_archives", "max_archive_ratio") if archive else ("max_writes", "max_write_ratio")
    if max_writes is not None and valid > max_writes:
        raise HubSpotConfigError(
            f"{valid:,} pairs would be {verb} (of {total:,} rows read), over {name}={max_writes:,}; "
            "nothing was sent"
        )
    if max_write_ratio is not None and total and valid / total > max_write_ratio:
        raise HubSpotConfigError(
            f"{valid:,} pairs would be {verb}, {valid / total:.1%} of the {total:,} rows read, over "
            f"{ratio_name}={max_write_ratio}; nothing was sent"
        )


def unlabeled_type_ids(known: Sequence[Mapping[str, Any]]) -> set[int]:
    """The type ids without a label among an object pair's association types."""
    return {int(e["typeId"]) for e in known if isinstance(e.get("typeId"), int) and not e.get("label")}


def check_archive_scope(
    known: Sequence[Mapping[str, Any]], type_ids: set[int], untyped: int, from_type: str, to_type: str
) -> None:
    """Refuse an archive that would remove every association of its pairs (``all_types`` not given).

    HubSpot cascades the removal of a pair's unlabeled type to every labelled type between the two
    records ("Deleting an unlabeled association will also delete all labeled associations between
    those two objects"), and ``batch/archive`` (no type) removes them all outright: either would take
    away labels the input never named.

    :param known: the object pair's association types (``{"category", "typeId", "label"}``)
    :param type_ids: the type ids the input names (the operator's and the rows')
    :param untyped: rows that name no type and get none from the operator
    """
    unlabeled = sorted(type_ids & unlabeled_type_ids(known))
    reasons = []
    if untyped:
        reasons.append(
            f"{untyped:,} rows name no association type, which removes every association between each "
            "pair (batch/archive)"
        )
    if unlabeled:
        reasons.append(
            f"association type {', '.join(map(str, unlabeled))} is the unlabeled type of {from_type} -> "
            f"{to_type}, and HubSpot cascades its removal to every labelled association between the two "
            "records"
        )
    if reasons:
        raise HubSpotConfigError(
            f"Refusing to archive: {'; '.join(reasons)}. Name the labels to remove (association_label or "
            "a labelled association_type_id), or pass all_types=True to remove every association of "
            "these pairs; nothing was sent"
        )
