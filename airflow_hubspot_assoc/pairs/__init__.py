"""Reading and validating input pairs: XCom lists, CSV, JSON Lines, JSON arrays and Parquet.

The operator builds a :class:`PairReader` and iterates it twice: once to validate everything before
the first write, once to send. Each iteration yields :class:`Pair` for good rows and
:class:`InvalidRow` for bad ones, and raises :class:`~airflow_hubspot_assoc.exceptions.PairInputError`
for problems that spoil a whole file.
"""

from __future__ import annotations

from airflow_hubspot_assoc.pairs.ids import MAX_ID, normalise_id
from airflow_hubspot_assoc.pairs.model import CATEGORIES, InvalidRow, Pair
from airflow_hubspot_assoc.pairs.reader import PairReader
from airflow_hubspot_assoc.pairs.sources import SUPPORTED_SUFFIXES

__all__ = ["CATEGORIES", "MAX_ID", "SUPPORTED_SUFFIXES", "InvalidRow", "Pair", "PairReader", "normalise_id"]
