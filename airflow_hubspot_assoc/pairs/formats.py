"""The CSV and JSON Lines readers, and the table of readers by format.

Each reader yields ``Pair``/``InvalidRow`` for one :class:`InputFile` and raises
:class:`PairInputError` for problems that spoil the whole file (no header, a missing id column, a JSON
document that is not an array, a file that is not Parquet). Readers hold at most one chunk of text
(or one Parquet batch) at a time, so memory stays flat however large the input is. The JSON-array
reader lives in ``json_array.py``, the Parquet reader in ``parquet.py``, the text decoding and line
splitting they share in ``text.py``.

The CSV loop is the hot path of the whole provider (millions of rows, read twice), which is why it
inlines the id test and builds tuples directly instead of calling helpers for every row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Generator
from contextlib import ExitStack

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs.columns import OPTIONAL_FIELDS, find_column
from airflow_hubspot_assoc.pairs.ids import SAFE_DIGITS
from airflow_hubspot_assoc.pairs.json_array import read_json
from airflow_hubspot_assoc.pairs.model import InvalidRow, Pair
from airflow_hubspot_assoc.pairs.parquet import read_parquet
from airflow_hubspot_assoc.pairs.rows import NO_KEYS, ItemConverter, KeySides, build_pair
from airflow_hubspot_assoc.pairs.sources import InputFile
from airflow_hubspot_assoc.pairs.text import open_text, physical_lines

Row = Pair | InvalidRow
#: ``(part, from_field, to_field, allow_empty, keys)``: ``keys`` says which sides hold business keys.
Reader = Callable[[InputFile, str, str, bool, KeySides], Generator[Row, None, None]]

_new_tuple = tuple.__new__
_DECODER = json.JSONDecoder()


def _csv_error(err: csv.Error) -> str:
    text = str(err)
    if "unexpected end of data" in text:
        return "unbalanced quote: a quoted field that starts on this line is never closed"
    if "field larger than field limit" in text:
        return f"malformed CSV ({text}); most likely an unbalanced quote on this line"
    return f"malformed CSV: {text}"


def _width_error(row: list[str], width: int, line: int, source: str, fi: int, ti: int) -> InvalidRow:
    return InvalidRow(
        source,
        line,
        None,
        f"expected {width} columns as in the header, found {len(row)}",
        row[fi] if fi < len(row) else None,
        row[ti] if ti < len(row) else None,
    )


def read_csv(
    part: InputFile, from_field: str, to_field: str, allow_empty: bool, keys: KeySides = NO_KEYS
) -> Generator[Row, None, None]:
    """Yield the rows of a CSV file with a header line; line numbers are physical lines."""
    source = part.source
    with ExitStack() as stack:
        reader = csv.reader(physical_lines(open_text(part, stack), source), strict=True)
        header: list[str] = []
        try:
            while not header:
                header = next(reader)
        except StopIteration:
            if allow_empty:
                return
            raise PairInputError("the file is empty (expected a header line)", source=source) from None
        except csv.Error as err:
            raise PairInputError(
                f"cannot read the header: {_csv_error(err)}", source=source, line=reader.line_num
            ) from None
        header_line = reader.line_num
        names = [name.strip() for name in header]
        fi = find_column(names, from_field, "from_id_field", part, header_line)
        ti = find_column(names, to_field, "to_id_field", part, header_line)
        optional = [names.index(field) if field in names else -1 for field in OPTIONAL_FIELDS]
        width = len(names)
        plain = optional == [-1, -1, -1] and not any(keys)
        new = _new_tuple
        pair = Pair
        last = header_line  # the physical line the previous record ended on
        while True:
            try:
                if plain:
                    for row in reader:
                        line = last + 1
                        last = reader.line_num
                        if len(row) == width:
                            a = row[fi]
                            b = row[ti]
                            if (
                                a.isascii()
                                and a.isdigit()
                                and a[0] != "0"
                                and len(a) < SAFE_DIGITS
                                and b.isascii()
                                and b.isdigit()
                                and b[0] != "0"
                                and len(b) < SAFE_DIGITS
                            ):
                                yield new(pair, (a, b, line, source, None, None, None, None))
                            else:
                                yield build_pair(a, b, line, source, from_field, to_field)
                        elif row:  # an empty list is a blank line, which is allowed anywhere
                            yield _width_error(row, width, line, source, fi, ti)
                else:
                    yi, ci, li = optional
                    for row in reader:
                        line = last + 1
                        last = reader.line_num
                        if len(row) == width:
                            yield build_pair(
                                row[fi],
                                row[ti],
                                line,
                                source,
                                from_field,
                                to_field,
                                row[yi] if yi >= 0 else None,
                                row[ci] if ci >= 0 else None,
                                row[li] if li >= 0 else None,
                                keys=keys,
                            )
                        elif row:
                            yield _width_error(row, width, line, source, fi, ti)
            except csv.Error as err:
                # The csv module resets after an error and goes on with the next physical line.
                line = last + 1
                last = reader.line_num
                yield InvalidRow(source, line, None, _csv_error(err), None, None)
                continue
            return


def read_jsonl(
    part: InputFile, from_field: str, to_field: str, allow_empty: bool, keys: KeySides = NO_KEYS
) -> Generator[Row, None, None]:
    """Yield the rows of a JSON Lines file: one JSON value per line, blank lines skipped."""
    source = part.source
    convert = ItemConverter(source, from_field, to_field, keys)
    decode = _DECODER.raw_decode
    with ExitStack() as stack:
        line = 0
        for physical in physical_lines(open_text(part, stack), source):
            line += 1
            item = physical.strip()
            if not item:
                continue
            try:
                value, end = decode(item)
            except (ValueError, RecursionError) as err:
                yield InvalidRow(source, line, None, _json_error(err), None, None)
                continue
            if end != len(item):
                yield InvalidRow(source, line, None, "not valid JSON: extra data after the value", None, None)
                continue
            yield convert(value, line)
        if line == 0 and not allow_empty:
            raise PairInputError("the file is empty", source=source)


def _json_error(err: BaseException) -> str:
    if isinstance(err, RecursionError):
        return "not valid JSON: nested too deeply"
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON: {err.msg} (column {err.colno})"
    return f"not valid JSON: {err}"


READERS: dict[str, Reader] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
    "json": read_json,
    "parquet": read_parquet,
}

#: What an input without rows means, per format, for the "no rows" error.
EMPTY_REASONS = {
    "csv": "the file has a header but no data rows",
    "jsonl": "the file has no JSON lines",
    "json": "the JSON array is empty",
    "parquet": "the Parquet file has no rows",
}
