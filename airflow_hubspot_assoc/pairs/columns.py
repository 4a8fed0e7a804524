"""Finding the named columns in a header: the CSV header line, or a Parquet file's schema.

Why apart from the readers: both tabular formats must refuse a missing or repeated id column with the
same message (naming the parameter to fix and the columns there are), and look for the same optional
override columns.
"""

from __future__ import annotations

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs.ids import shorten
from airflow_hubspot_assoc.pairs.model import CATEGORY_FIELD, LABEL_FIELD, TYPE_ID_FIELD
from airflow_hubspot_assoc.pairs.sources import InputFile

#: The optional per-row override columns, in the order ``build_pair`` takes their values.
OPTIONAL_FIELDS = (TYPE_ID_FIELD, CATEGORY_FIELD, LABEL_FIELD)


def find_column(names: list[str], wanted: str, parameter: str, part: InputFile, line: int) -> int:
    """The index of ``wanted`` in ``names``; a missing or repeated column raises, naming ``parameter``."""
    count = names.count(wanted)
    if count == 1:
        return names.index(wanted)
    if count > 1:
        reason = f"the header names column {wanted!r} {count} times"
        raise PairInputError(reason, source=part.source, line=line, field=wanted)
    shown = ", ".join(shorten(name, 30) for name in names[:12]) + (", ..." if len(names) > 12 else "")
    raise PairInputError(
        f"no column {wanted!r} in the header ({parameter}={wanted!r}); the header has: {shown}",
        source=part.source,
        line=line,
        field=wanted,
    )
