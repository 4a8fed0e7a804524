"""Labels created on demand (``create_missing_labels=True``): resolve a label name, and create it
through the labels API when the object pair lacks it.

Why here and not in the client: whether a missing label is an error, a creation or (in a dry run) a
line in the log is the operator's decision; the client only knows how to resolve and create. The
load resolves every label it meets (the operator's and the rows') before its first write, through
the callable this module builds, so labels are created before any association is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from airflow_hubspot_assoc.association_types import PLANNED_LABEL_TYPE_ID
from airflow_hubspot_assoc.exceptions import UnknownLabelError

_NOT_NAME = re.compile(r"[^a-z0-9]+")

Resolve = Callable[[str], tuple[str, int]]


def internal_name(label: str) -> str:
    """HubSpot's internal ``name`` for a label: lower case, runs of other characters as ``_``."""
    return _NOT_NAME.sub("_", label.strip().casefold()).strip("_") or "label"


class LabelsOnDemand:
    """Label name -> ``(category, type id)``, creating a label the object pair lacks, once.

    :param resolve: the hook's resolver (raises ``UnknownLabelError``)
    :param create: ``create(label, name=..., inverse_label=...)`` -> ``(category, type id)``
    :param inverse_labels: inverse labels by label name (case-insensitive), for labels created
    :param dry_run: only say which labels would be created; they resolve to ``PLANNED_LABEL_TYPE_ID``
    """

    def __init__(
        self,
        resolve: Resolve,
        create: Callable[..., tuple[str, int]],
        *,
        pair: str,
        log: Any,
        inverse_labels: dict[str, str] | None = None,
        dry_run: bool = False,
    ) -> None:
        self._resolve = resolve
        self._create = create
        self._pair = pair
        self._log = log
        self._inverse = {k.strip().casefold(): v for k, v in (inverse_labels or {}).items()}
        self._dry_run = dry_run
        self._made: dict[str, tuple[str, int]] = {}
        #: Labels created (or, in a dry run, that would be), in the order met.
        self.created: list[str] = []

    def __call__(self, label: str) -> tuple[str, int]:
        key = label.strip().casefold()
        made = self._made.get(key)
        if made is not None:
            return made
        try:
            return self._resolve(label)
        except UnknownLabelError as err:
            existing = ", ".join(repr(name) for name in err.existing) or "none"
            name, inverse = internal_name(label), self._inverse.get(key)
            described = f"{label!r} (name {name!r}{f', inverse {inverse!r}' if inverse else ''})"
            if self._dry_run:
                self._log.warning(
                    "Dry run: would create the association label %s for %s; existing labels: %s.",
                    described,
                    self._pair,
                    existing,
                )
                made = ("USER_DEFINED", PLANNED_LABEL_TYPE_ID)
            else:
                made = self._create(label.strip(), name=name, inverse_label=inverse)
                self._log.warning(
                    "Created the association label %s for %s: type id %s (%s).",
                    described,
                    self._pair,
                    made[1],
                    made[0],
                )
            self._made[key] = made
            self.created.append(label.strip())
            return made
