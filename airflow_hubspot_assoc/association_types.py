"""Which association type each pair is created with.

The operator has one type (an id with its category, a label name, or HubSpot's default association),
and a row may override it with its own ``association_type_id`` / ``association_label``. Labels are
resolved through the labels API once per name, before any write, so an unknown label costs no write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from airflow_hubspot_assoc.exceptions import HubSpotConfigError

if TYPE_CHECKING:
    from airflow_hubspot_assoc.pairs import Pair

CATEGORIES = frozenset({"HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK"})
MAX_TYPE_ID = 2**31 - 1  # the spec's associationTypeId is an int32


class AssociationType(NamedTuple):
    """One association type as HubSpot names it in ``types[]``."""

    category: str
    type_id: int

    def as_spec(self) -> dict[str, str | int]:
        """The ``AssociationSpec`` object of a batch create input."""
        return {"associationCategory": self.category, "associationTypeId": self.type_id}


#: The types of a pair: an empty tuple means HubSpot's default association (``batch/associate/default``).
Types = tuple[AssociationType, ...]
DEFAULT_ASSOCIATION: Types = ()


def check_category(category: str) -> str:
    """Return ``category`` upper-cased, or raise naming the allowed values."""
    normalised = category.strip().upper()
    if normalised not in CATEGORIES:
        raise HubSpotConfigError(
            f"association_category {category!r} is not one of {', '.join(sorted(CATEGORIES))}"
        )
    return normalised


def check_type_id(type_id: object) -> int:
    """Return ``type_id`` as an int in HubSpot's range, or raise quoting it."""
    if isinstance(type_id, bool) or not isinstance(type_id, int | str):
        raise HubSpotConfigError(f"association_type_id {type_id!r} is not an integer")
    try:
        value = int(type_id)
    except ValueError:
        raise HubSpotConfigError(f"association_type_id {type_id!r} is not an integer") from None
    if not 1 <= value <= MAX_TYPE_ID:
        raise HubSpotConfigError(f"association_type_id {type_id!r} is out of range 1..{MAX_TYPE_ID}")
    return value


class TypeResolver:
    """Decide the types of each pair, resolving label names once each through ``resolve_label``.

    :param default_types: the operator's own type, or ``DEFAULT_ASSOCIATION``.
    :param default_category: the category of a row's bare ``association_type_id``.
    :param resolve_label: label name -> (category, type id); raises UnknownLabelError.
    """

    def __init__(
        self,
        default_types: Types,
        default_category: str,
        resolve_label: Callable[[str], tuple[str, int]],
    ) -> None:
        self.default_types = default_types
        self._default_category = default_category
        self._resolve_label = resolve_label
        self._labels: dict[str, Types] = {}
        self._by_id: dict[tuple[str, int], Types] = {}

    def label(self, name: str) -> Types:
        """The types of a label name (resolved at most once per name, case-insensitively)."""
        key = name.strip().casefold()
        types = self._labels.get(key)
        if types is None:
            category, type_id = self._resolve_label(name.strip())
            types = (AssociationType(category, type_id),)
            self._labels[key] = types
        return types

    def types_of(self, pair: Pair) -> Types:
        """The types to create ``pair`` with; per-row fields win over the operator's type."""
        if pair.types is not None:
            return tuple(AssociationType(category, type_id) for category, type_id in pair.types)
        if pair.label is not None:
            return self.label(pair.label)
        if pair.type_id is not None:
            key = (pair.category or self._default_category, pair.type_id)
            types = self._by_id.get(key)
            if types is None:
                types = self._by_id[key] = (AssociationType(*key),)
            return types
        return self.default_types
