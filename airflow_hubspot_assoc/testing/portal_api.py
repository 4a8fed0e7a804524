"""The Python side of a stand-in's data: what tests seed and inspect without HTTP.

A mixin of :class:`~.server.HubSpotStandIn`, kept apart from the server's life cycle. Every
method reaches the same state the HTTP endpoints answer from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc.testing.config import PropertyConfig
from airflow_hubspot_assoc.testing.portal_data import type_id

if TYPE_CHECKING:
    from airflow_hubspot_assoc.testing.dispatch import Dispatcher


class PortalMethods:
    """Labels, records, properties and associations of the stand-in's portal."""

    _dispatcher: Dispatcher

    # -- labels --------------------------------------------------------------------------------

    def add_label(
        self,
        from_type: str,
        to_type: str,
        label: str,
        category: str = "USER_DEFINED",
        *,
        inverse_label: str | None = None,
        name: str | None = None,
    ) -> int:
        """Create an association label (and its inverse, named ``inverse_label`` if given) as
        ``POST .../labels`` would; return its associationTypeId."""
        forward, _ = self._dispatcher.api.labels.add(
            type_id(from_type), type_id(to_type), label, category, inverse_label=inverse_label, name=name
        )
        return forward.type_id

    def labels(self, from_type: str, to_type: str) -> list[dict[str, object]]:
        """The association types of a pair, as ``GET .../labels`` answers them."""
        return [
            t.as_spec_with_label()
            for t in self._dispatcher.api.labels.types(type_id(from_type), type_id(to_type))
        ]

    # -- records -------------------------------------------------------------------------------

    def set_missing_records(self, object_type: str, ids: Iterable[str | int]) -> None:
        """Make these record ids of ``object_type`` not exist (replacing an earlier call's set)."""
        self._dispatcher.api.records.set_missing(type_id(object_type), ids)

    def record_exists(self, object_type: str, record_id: str | int) -> bool:
        """Whether a record exists (see ``missing_ratio``), to compute expected outcomes."""
        return self._dispatcher.api.records.exists(type_id(object_type), str(record_id))

    def add_records(self, object_type: str, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add or update records ``{"id": "1", "properties": {"email": "a@x.com"}}``; return ids.

        Batch read (by id or ``idProperty``) and search then find them. A value that a unique
        property (or a contact's email) already has on another record is refused.
        """
        return self._dispatcher.portal.add_records(object_type, records)

    def remove_records(self, object_type: str, ids: Iterable[str | int]) -> None:
        """Delete records (or model a merge: remove one, add the survivor with its key)."""
        self._dispatcher.portal.remove_records(object_type, ids)

    def record_properties(self, object_type: str, record_id: str | int) -> dict[str, str] | None:
        """A record's property values, or None when it has none."""
        record = self._dispatcher.portal.records.get(type_id(object_type), str(record_id))
        return None if record is None else dict(record.properties)

    def add_property(
        self,
        object_type: str,
        name: str,
        *,
        has_unique_value: bool = False,
        label: str = "",
        type: str = "string",
        field_type: str = "text",
    ) -> None:
        """Define a property (a unique ``external_id``, say) as the properties API answers it."""
        config = PropertyConfig(object_type, name, label, type, field_type, has_unique_value)
        self._dispatcher.portal.records.define(type_id(object_type), config)

    # -- associations --------------------------------------------------------------------------

    def associations(self, from_type: str, to_type: str) -> set[tuple[str, str, str, int]]:
        """Every stored ``(from_id, to_id, category, typeId)`` of a pair, visible yet or not."""
        return self._dispatcher.api.store.snapshot(type_id(from_type), type_id(to_type))
