"""``KeyCache``: the keys a run resolved, kept for the next run, per portal, object type and property.

A second run over mostly the same warehouse keys then sends no resolution request for keys already
seen. One JSON file per portal, object type and property under ``key_cache_path`` (local disk or
object storage, through ``storage``), replaced whole after a run (a temporary file renamed on local
disk; one upload on object storage), so a reader never sees half a file. Keys are stored as HubSpot
compares them (folded), with the record id; ambiguous and unresolved keys are not cached, because a
record may be created or fixed before the next run.

A cached id can go stale when its record is merged or deleted; the resolver resolves such a key
again once when HubSpot reports the record missing (see ``KeyResolver.refresh``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.keys.normalise import KeyProperty

CACHE_FORMAT = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class KeyCache:
    """Read and write the key files of one portal under ``base``.

    :param portal: the portal id, or another name of the account when the connection has none.
    """

    def __init__(self, base: str, portal: str, *, log: logging.Logger) -> None:
        self.base = base.rstrip("/")
        self.portal = _UNSAFE.sub("_", portal) or "portal"
        self.log = log

    def path(self, prop: KeyProperty) -> str:
        """``<base>/<portal>/<object type>/<property>.json`` (names are checked before they get here)."""
        return f"{self.base}/{self.portal}/{prop.object_type}/{prop.name}.json"

    def load(self, prop: KeyProperty) -> dict[str, int]:
        """The cached keys of ``prop`` (folded key -> record id); empty when none or unreadable."""
        path = self.path(prop)
        try:
            text = storage.read_text(path)
        except OSError as err:
            self.log.warning("Cannot read the key cache %s (%s); resolving every key.", path, err)
            return {}
        if text is None:
            return {}
        try:
            return parse_key_map(text, prop)
        except ValueError as err:
            self.log.warning("Ignoring the key cache %s: it is not a key cache (%s).", path, err)
            return {}

    def save(self, prop: KeyProperty, ids: Mapping[str, int]) -> str | None:
        """Replace the cached keys of ``prop`` with ``ids``; the path written, or None when the write
        failed (logged, never raised: the load is done, and the next run only resolves more keys)."""
        path = self.path(prop)
        return path if write_key_map(path, prop, ids, portal=self.portal, log=self.log) else None


def parse_key_map(text: str, prop: KeyProperty) -> dict[str, int]:
    """The folded key -> record id of a key file's text; ``ValueError`` when it is not one for ``prop``.

    The sensor reads these files too (``verify="all"`` of a load by keys), and must fail rather than
    wait for nothing when one is broken, so the caller decides what a bad file means.
    """
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}")
        if data.get("format") != CACHE_FORMAT or data.get("property") != prop.name:
            raise ValueError(f"format {data.get('format')!r}, property {data.get('property')!r}")
        ids = data["ids"]
        if not isinstance(ids, dict):
            raise TypeError(f"ids is a {type(ids).__name__}")
        # In place: the id strings are freed one by one instead of building a second map.
        for key, value in ids.items():
            ids[key] = int(value)
            if ids[key] <= 0:
                raise ValueError(f"id {value!r} of {key!r} is not a record id")
        return ids
    except (TypeError, KeyError, AttributeError) as err:
        raise ValueError(str(err)) from err


def write_key_map(
    path: str, prop: KeyProperty, ids: Mapping[str, int], *, portal: str, log: logging.Logger
) -> bool:
    """Write ``ids`` (folded key -> record id) to ``path`` whole; False (logged) when it cannot."""
    payload = {
        "format": CACHE_FORMAT,
        "portal": portal,
        "objectType": prop.object_type,
        "property": prop.name,
        "ids": {key: str(value) for key, value in ids.items()},
    }
    try:
        storage.replace_text(path, json.dumps(payload, separators=(",", ":")))
    except OSError as err:
        log.warning("Cannot write the key file %s: %s", path, err)
        return False
    log.info("Saved %s %s keys of %s to %s.", f"{len(ids):,}", prop.name, prop.object_type, path)
    return True
