"""Checks that refuse a load before its first write: the object pair and its types, how much it
would write, and what an archive would take away beyond what the input names.

Why a module of its own: these are decisions on counts and on the object pair's association types,
made once the validate pass has read the whole input; the load calls them, the operators only pass
the limits. The only I/O is the one read of the pair's association types, through the sender.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc.association_types import PLANNED_LABEL_TYPE_ID
from airflow_hubspot_assoc.exceptions import HubSpotConfigError, HubSpotValidationError

if TYPE_CHECKING:
    from airflow_hubspot_assoc.client.sender import AssociationSender

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


def known_association_types(sender: AssociationSender, from_type: str, to_type: str) -> list[dict[str, Any]]:
    """One read before any write: the object pair's association types, as HubSpot lists them.

    Without it, an unknown object type or type id would only show as a 400 on every batch.
    """
    try:
        return sender.association_types()
    except HubSpotValidationError as err:
        raise HubSpotConfigError(
            f"HubSpot does not accept the object pair from_object_type={from_type!r} -> "
            f"to_object_type={to_type!r}: {err.hubspot_message}"
        ) from err


def check_type_ids(
    known: Sequence[Mapping[str, Any]], type_ids: set[int], from_type: str, to_type: str
) -> None:
    """Refuse type ids the object pair does not have (a label a dry run would create has none yet)."""
    existing = {int(entry["typeId"]) for entry in known if isinstance(entry.get("typeId"), int)}
    unknown = sorted(type_ids - existing - {PLANNED_LABEL_TYPE_ID})
    if unknown:
        described = ", ".join(
            f"{entry['typeId']} ({entry.get('category')}, {entry.get('label') or 'unlabeled'})"
            for entry in known
        )
        raise HubSpotConfigError(
            f"association_type_id {', '.join(map(str, unknown))} is not a type of {from_type} -> "
            f"{to_type}; HubSpot has: {described or 'none'}"
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
