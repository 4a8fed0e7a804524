"""Turning one row (CSV cells, a JSON value, an XCom item) into a ``Pair`` or an ``InvalidRow``.

Every reader funnels its slow cases through :func:`build_pair`, so that a bad id gets the same
reason whatever format it came from; decoded items (XCom lists, JSON Lines, JSON arrays) go through
:class:`ItemConverter`, which also enforces one item shape per input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_hubspot_assoc.association_types import AssociationType
from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs.ids import (
    MAX_ID,
    SAFE_DIGITS,
    InvalidValueError,
    normalise_category,
    normalise_id,
    normalise_key,
    normalise_label,
    normalise_type_id,
    shorten,
)
from airflow_hubspot_assoc.pairs.model import (
    CATEGORY_FIELD,
    LABEL_FIELD,
    TYPE_ID_FIELD,
    InvalidRow,
    Pair,
)

_new_tuple = tuple.__new__

# The three shapes an item can have; one input must stick to one of them.
SHAPE_LIST = "a [from_id, to_id] list"
SHAPE_FIELDS = "an object with id fields"
SHAPE_HUBSPOT = 'a HubSpot input {"from": {"id": ...}, "to": {"id": ...}}'

#: Which sides hold business keys (property values) instead of record ids: ``(from, to)``.
KeySides = tuple[bool, bool]
NO_KEYS: KeySides = (False, False)


def raw_text(value: Any) -> str | None:
    """The raw id as text for the failed-pairs file; containers as JSON so they stay readable."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        # Circular or otherwise unserialisable values still need some text.
        return repr(value)


def build_pair(
    raw_from: Any,
    raw_to: Any,
    line: int,
    source: str,
    from_field: str,
    to_field: str,
    raw_type_id: Any = None,
    raw_category: Any = None,
    raw_label: Any = None,
    *,
    keys: KeySides = NO_KEYS,
) -> Pair | InvalidRow:
    """Validate one row's values; the general (slower) path behind every reader's fast path.

    A side in ``keys`` holds a business key, kept as text (trimmed) for the key resolver; the fast
    paths only ever pass canonical digit strings, which are their own trimmed key.
    """
    field = from_field
    try:
        from_id = normalise_key(raw_from) if keys[0] else normalise_id(raw_from)
        field = to_field
        to_id = normalise_key(raw_to) if keys[1] else normalise_id(raw_to)
        field = TYPE_ID_FIELD
        type_id = normalise_type_id(raw_type_id)
        field = CATEGORY_FIELD
        category = normalise_category(raw_category)
        field = LABEL_FIELD
        label = normalise_label(raw_label)
    except InvalidValueError as err:
        return InvalidRow(source, line, field, err.reason, raw_text(raw_from), raw_text(raw_to))
    return _new_tuple(Pair, (from_id, to_id, line, source, type_id, category, label, None))


def _fast_id(value: Any) -> str | None:
    """The id when it is already canonical (the common case), else None to take the slow path."""
    kind = type(value)
    if kind is str:
        if value.isascii() and value.isdigit() and value[0] != "0" and len(value) < SAFE_DIGITS:
            return value
    elif kind is int and 0 < value <= MAX_ID:
        return str(value)
    return None


class ItemConverter:
    """Convert decoded items of one input into pairs, refusing a second item shape.

    One converter serves one file (or one XCom list): the first item that has a recognisable shape
    fixes the shape, and a later item of another shape raises :class:`PairInputError`, because a
    mixed list nearly always means two inputs were concatenated by mistake.
    """

    __slots__ = ("from_field", "keys", "shape", "source", "to_field")

    def __init__(self, source: str, from_field: str, to_field: str, keys: KeySides = NO_KEYS) -> None:
        self.source = source
        self.from_field = from_field
        self.to_field = to_field
        self.keys = keys if any(keys) else NO_KEYS  # the fast path below tests identity
        self.shape: str | None = None

    def _set_shape(self, shape: str, line: int) -> None:
        if self.shape is None:
            self.shape = shape
        elif self.shape != shape:
            raise PairInputError(
                f"mixed item shapes: this item is {shape}, earlier items are {self.shape}; "
                "use one shape for the whole input",
                source=self.source,
                line=line,
            )

    def __call__(self, item: Any, line: int) -> Pair | InvalidRow:
        """Convert one item found at ``line`` (physical line, or item number for lists)."""
        if type(item) is dict:
            from_field = self.from_field
            to_field = self.to_field
            if self.shape is SHAPE_FIELDS and len(item) == 2 and self.keys is NO_KEYS:
                # The dominant case: {"from_id": ..., "to_id": ...} and nothing else.
                from_id = _fast_id(item.get(from_field))
                if from_id is not None:
                    to_id = _fast_id(item.get(to_field))
                    if to_id is not None:
                        return _new_tuple(Pair, (from_id, to_id, line, self.source, None, None, None, None))
            return self._mapping(item, line)
        if isinstance(item, Mapping):
            return self._mapping(item, line)
        if isinstance(item, list | tuple):
            self._set_shape(SHAPE_LIST, line)
            if len(item) != 2:
                return InvalidRow(
                    self.source,
                    line,
                    None,
                    f"expected [from_id, to_id], got a list of {len(item)} values",
                    raw_text(item[0]) if item else None,
                    raw_text(item[1]) if len(item) > 1 else None,
                )
            return build_pair(
                item[0], item[1], line, self.source, self.from_field, self.to_field, keys=self.keys
            )
        return InvalidRow(
            self.source,
            line,
            None,
            f"expected an object or a [from_id, to_id] list, got {shorten(item)}",
            None,
            None,
        )

    def _mapping(self, item: Mapping[Any, Any], line: int) -> Pair | InvalidRow:
        from_field = self.from_field
        to_field = self.to_field
        has_fields = from_field in item or to_field in item
        # A configured id field whose value is an object is the HubSpot form in disguise (this only
        # matters when someone names the id fields "from" and "to").
        if (
            has_fields
            and not isinstance(item.get(from_field), Mapping)
            and not isinstance(item.get(to_field), Mapping)
        ) or not ("from" in item or "to" in item):
            self._set_shape(SHAPE_FIELDS, line)
            return build_pair(
                item.get(from_field),
                item.get(to_field),
                line,
                self.source,
                from_field,
                to_field,
                item.get(TYPE_ID_FIELD),
                item.get(CATEGORY_FIELD),
                item.get(LABEL_FIELD),
                keys=self.keys,
            )
        self._set_shape(SHAPE_HUBSPOT, line)
        return self._hubspot(item, line)

    def _hubspot(self, item: Mapping[Any, Any], line: int) -> Pair | InvalidRow:
        raw_ids = []
        for side in ("from", "to"):
            ref = item.get(side)
            raw_ids.append(ref.get("id") if isinstance(ref, Mapping) else ref)
        raw_from, raw_to = raw_ids
        for side, ref in (("from", item.get("from")), ("to", item.get("to"))):
            if not isinstance(ref, Mapping):
                reason = (
                    f'"{side}" is missing' if ref is None else f'"{side}" must be an object {{"id": ...}}'
                )
                return InvalidRow(self.source, line, side, reason, raw_text(raw_from), raw_text(raw_to))
        field = "from.id"
        try:
            from_id = normalise_key(raw_from) if self.keys[0] else normalise_id(raw_from)
            field = "to.id"
            to_id = normalise_key(raw_to) if self.keys[1] else normalise_id(raw_to)
            field = "types"
            types = _hubspot_types(item.get("types"))
        except _TypesError as err:
            return InvalidRow(self.source, line, err.field, err.reason, raw_text(raw_from), raw_text(raw_to))
        except InvalidValueError as err:
            return InvalidRow(self.source, line, field, err.reason, raw_text(raw_from), raw_text(raw_to))
        return _new_tuple(Pair, (from_id, to_id, line, self.source, None, None, None, types))


class _TypesError(InvalidValueError):
    """A problem inside ``types``, naming the exact entry (``types[2].associationTypeId``)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        super().__init__(reason)


def _hubspot_types(raw: Any) -> tuple[AssociationType, ...] | None:
    """HubSpot's ``types`` list as association types; missing or empty means "use the default"."""
    if raw is None:
        return None
    if not isinstance(raw, list | tuple):
        raise _TypesError("types", f"expected a list of association types, got {shorten(raw)}")
    if not raw:
        return None
    types = []
    for index, entry in enumerate(raw):
        where = f"types[{index}]"
        if not isinstance(entry, Mapping):
            raise _TypesError(where, f"expected an object, got {shorten(entry)}")
        try:
            category = normalise_category(entry.get("associationCategory"))
        except InvalidValueError as err:
            raise _TypesError(f"{where}.associationCategory", err.reason) from None
        if category is None:
            raise _TypesError(f"{where}.associationCategory", "the association category is missing")
        try:
            type_id = normalise_type_id(entry.get("associationTypeId"))
        except InvalidValueError as err:
            raise _TypesError(f"{where}.associationTypeId", err.reason) from None
        if type_id is None:
            raise _TypesError(f"{where}.associationTypeId", "the association type id is missing")
        types.append(AssociationType(category, type_id))
    return tuple(types)
