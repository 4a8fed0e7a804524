"""Which association type each pair is created with.

The operator has one type (an id with its category, a label name, or HubSpot's default association),
and a row may override it with its own ``association_type_id`` / ``association_label``. Labels are
resolved through the labels API once per name, before any write, so an unknown label costs no write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_hubspot_assoc.constants import CATEGORIES as CATEGORIES
from airflow_hubspot_assoc.constants import MAX_TYPE_ID as MAX_TYPE_ID
from airflow_hubspot_assoc.exceptions import HubSpotConfigError

if TYPE_CHECKING:
    from airflow_hubspot_assoc.pairs import Pair


class AssociationType(NamedTuple):
    """One association type, ``(category, type id)``: the one representation the package uses.

    A named tuple, so it is hashable (sets of types compare as sets), cheap to build per row and
    still a plain ``(str, int)`` pair for JSON and checkpoints.
    """

    category: str
    type_id: int

    def as_spec(self) -> dict[str, str | int]:
        """The ``AssociationSpec`` object of a batch create input (and of the batch record)."""
        return {"associationCategory": self.category, "associationTypeId": self.type_id}

    def describe(self) -> str:
        """``HUBSPOT_DEFINED/279``, for logs and errors."""
        return f"{self.category}/{self.type_id}"

    @classmethod
    def parse(cls, item: object) -> AssociationType:
        """Read a type in the create shape (``associationCategory``/``associationTypeId``) or the read
        shape (``category``/``typeId``); raise ``ValueError`` quoting it when it is neither."""
        if not isinstance(item, Mapping):
            raise ValueError(f"An association type must be an object, got {item!r}")
        category = item.get("associationCategory", item.get("category"))
        type_id = item.get("associationTypeId", item.get("typeId"))
        if not isinstance(category, str) or not category:
            raise ValueError(f"Association type without a category: {dict(item)!r}")
        if isinstance(type_id, bool) or not isinstance(type_id, int | str):
            raise ValueError(f"Association type without a numeric type id: {dict(item)!r}")
        try:
            return cls(category, int(type_id))
        except ValueError:
            raise ValueError(f"Association type without a numeric type id: {dict(item)!r}") from None


def type_set(items: Iterable[Any] | None) -> frozenset[AssociationType]:
    """The set of types in a JSON list (either shape, see :meth:`AssociationType.parse`); None is empty."""
    return frozenset(AssociationType.parse(item) for item in items or ())


def describe_types(types: Iterable[AssociationType]) -> str:
    """``HUBSPOT_DEFINED/1, USER_DEFINED/7``, sorted, for logs and errors."""
    return ", ".join(f"{category}/{type_id}" for category, type_id in sorted(types))


class AssociationPair(NamedTuple):
    """An association between two records with its types, as the batch record samples it and the
    read-back expects it; empty ``types`` means a default association (any type will do)."""

    from_id: str
    to_id: str
    types: frozenset[AssociationType] = frozenset()

    @property
    def key(self) -> tuple[str, str]:
        """The ``(from_id, to_id)`` pair, without types."""
        return (self.from_id, self.to_id)

    def describe(self) -> str:
        """``1 -> 2 [HUBSPOT_DEFINED/279]``, for logs and errors."""
        return f"{self.from_id} -> {self.to_id} [{describe_types(self.types) if self.types else 'any type'}]"

    def as_dict(self) -> dict[str, Any]:
        """The batch record's sample shape: ``{"from", "to", "types": [AssociationSpec, ...]}``."""
        return {"from": self.from_id, "to": self.to_id, "types": [t.as_spec() for t in sorted(self.types)]}


#: The types of a pair: an empty tuple means HubSpot's default association (``batch/associate/default``).
Types = tuple[AssociationType, ...]
DEFAULT_ASSOCIATION: Types = ()


#: The type id a dry run gives a label it would create (HubSpot's ids start at 1, so it is never real).
PLANNED_LABEL_TYPE_ID = 0


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
            return pair.types
        if pair.label is not None:
            return self.label(pair.label)
        if pair.type_id is not None:
            key = (pair.category or self._default_category, pair.type_id)
            types = self._by_id.get(key)
            if types is None:
                types = self._by_id[key] = (AssociationType(*key),)
            return types
        return self.default_types
