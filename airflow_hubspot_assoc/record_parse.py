"""Parsing helpers of the batch record's JSON, with errors that name the bad key.

Apart from ``record`` so that the record's module stays about the contract (keys, bounds, questions)
and under the size limit; only ``record`` and ``record_sync`` use these. ``split_samples`` is here too:
the two writers of a record with both samples (revert and sync) share the one rule for the bound.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType, type_set

Types = tuple[AssociationType, ...]


def parse_types(raw: Any, key: str) -> Types:
    """A list of type specs (or labels' ``{category, typeId}``) as types, duplicates dropped."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ValueError(f"Batch record {key} must be a list of association types, got {raw!r}")
    return tuple(dict.fromkeys(AssociationType.parse(item) for item in raw))


def optional_str(raw: Mapping[str, Any], key: str) -> str | None:
    """``raw[key]`` when it is a string or missing; ``ValueError`` otherwise."""
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"Batch record {key} must be a string, got {value!r}")
    return value


def count(raw: Mapping[str, Any], key: str, name: str | None = None) -> int:
    """A non-negative integer count (missing or null: 0); ``name`` is the key as messages show it."""
    value = raw.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Batch record field {name or key!r} must be a non-negative integer, got {value!r}")
    return value


def as_list(raw: Mapping[str, Any], key: str) -> list[Any]:
    """``raw[key]`` as a list (missing or null: empty)."""
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError(f"Batch record {key} must be a list, got {value!r}")
    return list(value)


def sample_pair(item: Any, default_types: frozenset[AssociationType] | None) -> AssociationPair:
    """One sample item; ``default_types=None`` (a ``removedSample`` item) requires its own ``types``."""
    if not isinstance(item, Mapping) or not item.get("from") or not item.get("to"):
        raise ValueError(f"Batch record sample items need 'from' and 'to', got {item!r}")
    if default_types is None and "types" not in item:
        raise ValueError(f"Batch record removedSample items need 'types', got {item!r}")
    types = type_set(item["types"]) if "types" in item else (default_types or frozenset())
    return AssociationPair(str(item["from"]), str(item["to"]), types)


def split_samples(
    removals: Sequence[AssociationPair], presents: Sequence[AssociationPair], bound: int
) -> tuple[tuple[AssociationPair, ...], tuple[AssociationPair, ...]]:
    """``(removedSample, sample)``: at most ``bound`` pairs together, half each when both kinds have
    more (so that the sensor confirms both), the room one leaves going to the other."""
    removed = min(len(removals), max(bound // 2, bound - len(presents)))
    return tuple(removals[:removed]), tuple(presents[: bound - removed])


def load_mapping(value: Mapping[str, Any] | str) -> dict[str, Any]:
    """A record given as a dict, its JSON text or the Python repr a Jinja template renders."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            loaded = json.loads(text)
        except ValueError:
            # A Jinja template renders a dict as its Python repr (single quotes, True/None).
            try:
                loaded = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                loaded = None
        if isinstance(loaded, Mapping):
            return dict(loaded)
    shown = repr(value)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    raise ValueError(
        "batch must be the operator's batch record (a dict or its JSON text, e.g. create.output), "
        f"got {shown}"
    )
