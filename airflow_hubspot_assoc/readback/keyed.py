"""The ids a load by business keys resolved, for ``verify="all"``: read from files, never from HubSpot.

A load by keys (issue 13) records in each side of its ``resolution`` the file that holds the keys it
resolved (``keyMap``: the key cache's file, or one written beside the failed pairs). The sensor maps
the input's keys through those files, exactly as the operator resolved them, instead of resolving
again: another round of reads would cost HubSpot requests and could give other ids than the load
used (a record created or merged since). Files, not worker memory, so any worker can read them.

A key missing from its file did not resolve (unresolved or ambiguous: the operator failed the pair),
so the pair is skipped like a failed one; more such rows than the record's ``failed`` and
``duplicates`` counts (a repeated row may be counted as a duplicate before its key is looked at) mean the
file no longer says what the run resolved (the cache was replaced since), which fails the check
rather than waiting for fewer pairs than were written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.exceptions import HubSpotConfigError
from airflow_hubspot_assoc.keys.cache import parse_key_map
from airflow_hubspot_assoc.keys.normalise import KeyProperty
from airflow_hubspot_assoc.record import BatchRecord

SIDES = ("from", "to")


def key_map_paths(record: BatchRecord) -> dict[str, str] | None:
    """Each key side's ``keyMap`` path; None when a key side has none (no cache, no failed pairs)."""
    paths: dict[str, str] = {}
    for side, value in (record.resolution or {}).items():
        path = value.get("keyMap") if isinstance(value, Mapping) else None
        if not isinstance(path, str) or not path:
            return None
        paths[side] = path
    return paths or None


@dataclass
class KeyMaps:
    """Per side (``from``, ``to``), the property and its folded key -> record id; None for id sides.

    :param failed: the record's ``failed`` + ``duplicates``, the most rows that may be skipped for their keys.
    """

    props: tuple[KeyProperty | None, KeyProperty | None]
    ids: tuple[dict[str, int] | None, dict[str, int] | None]
    failed: int
    skipped: int = field(default=0)

    @classmethod
    def of(cls, record: BatchRecord) -> KeyMaps:
        """Read the record's key files (each once); a missing or broken one is a config error."""
        paths = key_map_paths(record) or {}
        props: list[KeyProperty | None] = [None, None]
        ids: list[dict[str, int] | None] = [None, None]
        for index, side in enumerate(SIDES):
            entry = (record.resolution or {}).get(side)
            if not isinstance(entry, Mapping) or side not in paths:
                continue
            object_type, name = entry.get("objectType"), entry.get("property")
            if not isinstance(object_type, str) or not isinstance(name, str):
                raise HubSpotConfigError(
                    f"The batch record's resolution of {side!r} is incomplete: {entry!r}"
                )
            prop = KeyProperty(side, object_type, name)
            path = paths[side]
            try:
                text = storage.read_text(path)
                if text is None:
                    raise ValueError("no such file")
                ids[index] = parse_key_map(text, prop)
            except (OSError, ValueError) as err:
                raise HubSpotConfigError(
                    f"Cannot read the {side} keys ({name}) the load resolved, at {path!r} ({err}); "
                    "verify='all' of a load by keys maps the input through that file"
                ) from err
            props[index] = prop
        return cls((props[0], props[1]), (ids[0], ids[1]), record.failed + record.duplicates)

    @property
    def sides(self) -> tuple[bool, bool]:
        """Which sides of the input hold keys (the pair reader keeps them as text)."""
        return (self.props[0] is not None, self.props[1] is not None)

    def map(self, from_id: str, to_id: str) -> tuple[str, str] | None:
        """The pair's record ids as the load resolved them; None when a key did not resolve."""
        given = (from_id, to_id)
        out = [from_id, to_id]
        for index in (0, 1):
            prop, ids = self.props[index], self.ids[index]
            if prop is None or ids is None:
                continue
            record_id = ids.get(prop.fold(given[index]))
            if record_id is None:
                self.skipped += 1
                if self.skipped > self.failed:
                    raise HubSpotConfigError(
                        f"{self.skipped:,} pairs of the input have keys that are not in the load's key "
                        f"files, but the load failed (or dropped as duplicates) only {self.failed:,}: "
                        "the files changed since the load (another run replaced the key cache?), e.g. "
                        f"{prop.name}={given[index]!r}. Use verify='sample'."
                    )
                return None
            out[index] = str(record_id)
        return out[0], out[1]
