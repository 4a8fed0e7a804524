"""The two values the readers yield: a valid ``Pair`` or an ``InvalidRow`` that says what is wrong.

Both are named tuples because the operator handles millions of them: a tuple is the cheapest object
Python can build per row, and it still reads like a record in logs and tests.
"""

from __future__ import annotations

from typing import NamedTuple

from airflow_hubspot_assoc.association_types import AssociationType
from airflow_hubspot_assoc.constants import CATEGORIES
from airflow_hubspot_assoc.exceptions import PairInputError

#: The column or key names of the optional per-row overrides.
TYPE_ID_FIELD = "association_type_id"
CATEGORY_FIELD = "association_category"
LABEL_FIELD = "association_label"

__all__ = [
    "CATEGORIES",
    "CATEGORY_FIELD",
    "LABEL_FIELD",
    "TYPE_ID_FIELD",
    "XCOM_SOURCE",
    "InvalidRow",
    "Pair",
]

#: Where XCom input comes from, as shown in messages and records.
XCOM_SOURCE = "pairs"


class Pair(NamedTuple):
    """One association to create, with its ids already normalised and its origin for messages."""

    #: Decimal digits without leading zeros, 1 <= id <= 2**63 - 1.
    from_id: str
    to_id: str
    #: Physical line in the file (the header is line 1); the 1-based item number for XCom lists;
    #: for Parquet the 1-based row number + 1, as if the file had a header line.
    line: int
    #: The file path or URL as the user gave it, or ``"pairs"`` for XCom input.
    source: str
    #: Per-row ``association_type_id`` override.
    type_id: int | None = None
    #: Per-row ``association_category`` override (one of ``CATEGORIES``).
    category: str | None = None
    #: Per-row ``association_label`` override, to be resolved to a type id by the operator.
    label: str | None = None
    #: Explicit HubSpot ``types`` from the HubSpot-input form.
    types: tuple[AssociationType, ...] | None = None


class InvalidRow(NamedTuple):
    """A row that cannot become a pair; the operator fails on it or reports it like a failed pair."""

    source: str
    #: Physical line (or item number for lists); None when the problem has no single line.
    line: int | None
    #: The column or key at fault; None when the whole row is at fault (for example its column count).
    field: str | None
    reason: str
    #: The raw ids as text, when the row had them, so the failed-pairs file can show what was sent.
    from_id: str | None = None
    to_id: str | None = None

    def to_error(self) -> PairInputError:
        """The same problem as an exception, for operators that do not tolerate bad rows."""
        return PairInputError(self.reason, source=self.source, line=self.line, field=self.field)
