"""Streaming readers for CSV, JSON Lines, JSON arrays and Parquet, one generator per format.

Each reader yields ``Pair``/``InvalidRow`` for one :class:`InputFile` and raises
:class:`PairInputError` for problems that spoil the whole file (no header, a missing id column, a JSON
document that is not an array, a file that is not Parquet). Readers hold at most one chunk of text
(or one Parquet batch) at a time, so memory stays flat however large the input is.

The CSV loop is the hot path of the whole provider (millions of rows, read twice), which is why it
inlines the id test and builds tuples directly instead of calling helpers for every row.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from typing import IO, Any

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs.ids import MAX_ID, SAFE_DIGITS, shorten
from airflow_hubspot_assoc.pairs.model import CATEGORY_FIELD, LABEL_FIELD, TYPE_ID_FIELD, InvalidRow, Pair
from airflow_hubspot_assoc.pairs.rows import ItemConverter, build_pair
from airflow_hubspot_assoc.pairs.sources import InputFile

Row = Pair | InvalidRow
Reader = Callable[[InputFile, str, str, bool], Generator[Row, None, None]]

#: Text is decoded in chunks of this many characters: big enough to make per-chunk overhead vanish, small
#: enough that a reader's footprint stays far below any realistic input.
TEXT_CHUNK = 1 << 16
#: Longer lines are refused instead of being read into memory whole (a CSV field is capped far lower
#: by the csv module anyway).
MAX_LINE_CHARS = 1 << 22
#: A single JSON array item larger than this is refused rather than buffered without bound.
MAX_JSON_ITEM = 1 << 20
#: Parquet rows converted per batch.
PARQUET_BATCH = 1 << 13

_new_tuple = tuple.__new__
_OPTIONAL_FIELDS = (TYPE_ID_FIELD, CATEGORY_FIELD, LABEL_FIELD)
_DECODER = json.JSONDecoder()


def open_text(part: InputFile, stack: ExitStack, newline: str | None = "") -> IO[str]:
    """Open ``part`` as UTF-8 text on ``stack``; a UTF-8 byte-order mark is dropped, bad bytes raise."""
    raw = part.open_bytes(stack)
    text = stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline=newline))
    text._CHUNK_SIZE = TEXT_CHUNK  # type: ignore[attr-defined]
    return text


def physical_lines(text: IO[str], source: str) -> Iterator[str]:
    r"""The lines of ``text`` (split at ``\n``, ``\r\n`` and a lone ``\r``, endings kept), cheaply.

    Iterating a text file directly re-checks ``closed`` on the byte stream for every line; when that
    stream is Python code (``GzipFile``, an fsspec file behind Airflow's lineage wrapper) the check
    costs more than parsing the line. Reading whole-line chunks and iterating them as ``StringIO``
    keeps the per-line work in C for every kind of source.
    """
    return itertools.chain.from_iterable(_line_chunks(text, source))


def _line_chunks(text: IO[str], source: str) -> Iterator[io.StringIO]:
    read = text.read
    while True:
        chunk = read(TEXT_CHUNK)
        if not chunk:
            return
        # Never end a chunk inside a line, nor between the two halves of a \r\n.
        while chunk[-1] == "\r":
            more = read(1)
            if not more:
                break
            chunk += more
        if chunk[-1] not in "\r\n":
            rest = text.readline(MAX_LINE_CHARS)
            if len(rest) == MAX_LINE_CHARS and rest[-1] not in "\r\n":
                # Without this bound a file with no line breaks would be read into memory whole.
                raise PairInputError(
                    f"a line is longer than {MAX_LINE_CHARS} characters; is this really a "
                    "CSV or JSON Lines file?",
                    source=source,
                )
            chunk += rest
        yield io.StringIO(chunk, newline="")


def locate_bad_utf8(part: InputFile) -> int:
    """The physical line of the first byte sequence that is not UTF-8 (the error path only).

    The text layer decodes whole chunks, so its error says nothing about lines; reading the bytes
    again here is cheap compared to making the hot path count bytes. Line breaks are counted the way
    the readers count them: ``\\n``, ``\\r\\n`` and a lone ``\\r``.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    previous_cr = False
    with ExitStack() as stack:
        raw = part.open_bytes(stack)
        while True:
            chunk = raw.read(1 << 16)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                # Positions count from the bytes the decoder held back; those hold no line break.
                head = chunk[: max(err.start - pending, 0)]
                return line + _line_breaks(head, previous_cr)
            if not chunk:
                return line
            line += _line_breaks(chunk, previous_cr)
            previous_cr = chunk.endswith(b"\r")


def _line_breaks(data: bytes, previous_cr: bool) -> int:
    breaks = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    if previous_cr and data.startswith(b"\n"):
        breaks -= 1  # the second half of a \r\n split across two chunks
    return breaks


def _column(names: list[str], wanted: str, parameter: str, part: InputFile, line: int) -> int:
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
    part: InputFile, from_field: str, to_field: str, allow_empty: bool
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
        fi = _column(names, from_field, "from_id_field", part, header_line)
        ti = _column(names, to_field, "to_id_field", part, header_line)
        optional = [names.index(field) if field in names else -1 for field in _OPTIONAL_FIELDS]
        width = len(names)
        plain = optional == [-1, -1, -1]
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
    part: InputFile, from_field: str, to_field: str, allow_empty: bool
) -> Generator[Row, None, None]:
    """Yield the rows of a JSON Lines file: one JSON value per line, blank lines skipped."""
    source = part.source
    convert = ItemConverter(source, from_field, to_field)
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


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_KINDS = {"{": "an object", '"': "a string", "t": "a boolean", "f": "a boolean", "n": "null"}


class _ArrayScanner:
    """Reads values out of a JSON text chunk by chunk, keeping track of the physical line."""

    def __init__(self, text: IO[str], source: str) -> None:
        self.text = text
        self.source = source
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False

    def fill(self) -> bool:
        """Append the next chunk, dropping consumed text; False at the end of the file."""
        if self.eof:
            return False
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        # Reading at least as much as is buffered makes retries on a large item linear, not quadratic.
        chunk = self.text.read(max(TEXT_CHUNK, len(self.buf)))
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def peek(self) -> str:
        """Skip whitespace and return the next character ('' at the end of the file)."""
        pos = self.pos
        if pos < len(self.buf) and self.buf[pos] not in " \t\n\r":
            return self.buf[pos]  # the usual case in compact JSON, without the regex
        while True:
            end = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if end != self.pos:
                self.line += self.buf.count("\n", self.pos, end)
                self.pos = end
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def fail(self, reason: str, line: int | None = None) -> PairInputError:
        return PairInputError(reason, source=self.source, line=self.line if line is None else line)

    def value(self) -> Any:
        """Decode the value at the current position, reading more text while it is incomplete."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if len(self.buf) - self.pos > MAX_JSON_ITEM:
                    raise self.fail(f"an array item is larger than {MAX_JSON_ITEM} characters") from None
                if self.fill():
                    continue
                line = self.line + self.buf.count("\n", self.pos, err.pos)
                where = f" (in the value that starts on line {self.line})" if line != self.line else ""
                raise self.fail(f"malformed JSON: {err.msg}{where}", line) from None
            except RecursionError:
                raise self.fail("malformed JSON: nested too deeply") from None
            except ValueError as err:  # for example an integer with more than 4300 digits
                raise self.fail(f"malformed JSON: {err}") from None
            if end == len(self.buf) and self.fill():
                continue  # a number at the end of a chunk may go on in the next one
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return value


def read_json(
    part: InputFile, from_field: str, to_field: str, allow_empty: bool
) -> Generator[Row, None, None]:
    """Yield the items of a file holding one JSON array, decoding one item at a time."""
    source = part.source
    convert = ItemConverter(source, from_field, to_field)
    with ExitStack() as stack:
        # Universal newlines: JSON has no raw line breaks inside strings, so only whitespace changes
        # and counting "\n" then counts every kind of line break.
        scanner = _ArrayScanner(open_text(part, stack, newline=None), source)
        first = scanner.peek()
        if not first:
            if allow_empty:
                return
            raise PairInputError("the file is empty", source=source)
        if first != "[":
            kind = _KINDS.get(first, "a number" if first in "-0123456789" else "no JSON value")
            raise scanner.fail(
                f"a .json file must hold one JSON array of pairs, but it starts with {kind}; "
                "for one JSON value per line name the file .jsonl"
            )
        scanner.pos += 1
        if scanner.peek() == "]":
            scanner.pos += 1
        else:
            index = 0
            while True:
                index += 1
                line = scanner.line
                row = convert(scanner.value(), line)
                if type(row) is InvalidRow:
                    # A one-line array would otherwise leave the user hunting for the item.
                    row = row._replace(reason=f"{row.reason} (array item {index})")
                yield row
                after = scanner.peek()
                if after == ",":
                    scanner.pos += 1
                    scanner.peek()
                elif after == "]":
                    scanner.pos += 1
                    break
                elif not after:
                    raise scanner.fail("the JSON array is not closed (is the file truncated?)")
                else:
                    raise scanner.fail(f"malformed JSON: expected ',' or ']' after array item {index}")
        if scanner.peek():
            raise scanner.fail("malformed JSON: extra data after the array")


def read_parquet(
    part: InputFile, from_field: str, to_field: str, allow_empty: bool
) -> Generator[Row, None, None]:
    """Yield the rows of a Parquet file batch by batch; line is the 1-based row number + 1."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise PairInputError(
            "reading Parquet needs pyarrow; install it with: pip install 'airflow-hubspot-assoc[parquet]'",
            source=part.source,
        ) from None
    source = part.source
    with ExitStack() as stack:
        try:
            parquet = pq.ParquetFile(_parquet_source(part, stack))
        except (pa.ArrowException, OSError) as err:
            raise PairInputError(f"not a readable Parquet file: {err}", source=source) from None
        schema = parquet.schema_arrow
        names = list(schema.names)
        for field, parameter in ((from_field, "from_id_field"), (to_field, "to_id_field")):
            _column(names, field, parameter, part, 1)
        columns = [from_field, to_field] + [field for field in _OPTIONAL_FIELDS if field in names]
        for name in columns:
            _check_parquet_type(pa, name, schema.field(name).type, source)
        if parquet.metadata.num_rows == 0 and allow_empty:
            return
        optional = [columns.index(field) if field in columns else -1 for field in _OPTIONAL_FIELDS]
        new = _new_tuple
        pair = Pair
        line = 1
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH, columns=columns):
                from_ids, from_clean = _parquet_ids(pa, pc, batch.column(0))
                to_ids, to_clean = _parquet_ids(pa, pc, batch.column(1))
                if from_clean and to_clean and len(columns) == 2:
                    # Every id in the batch is canonical already: no per-row checks at all.
                    for a, b in zip(from_ids, to_ids, strict=True):
                        line += 1
                        yield new(pair, (a, b, line, source, None, None, None, None))
                    continue
                extras = [batch.column(i).to_pylist() if i >= 0 else None for i in optional]
                for index, (a, b) in enumerate(zip(from_ids, to_ids, strict=True)):
                    line += 1
                    if (
                        len(columns) == 2
                        and type(a) is str
                        and type(b) is str
                        and a.isdigit()
                        and a.isascii()
                        and a[0] != "0"
                        and len(a) < SAFE_DIGITS
                        and b.isdigit()
                        and b.isascii()
                        and b[0] != "0"
                        and len(b) < SAFE_DIGITS
                    ):
                        yield new(pair, (a, b, line, source, None, None, None, None))
                        continue
                    yield build_pair(
                        a,
                        b,
                        line,
                        source,
                        from_field,
                        to_field,
                        *(values[index] if values is not None else None for values in extras),
                    )
        except (pa.ArrowException, OSError) as err:
            reason = f"cannot read the Parquet data: {err}"
            raise PairInputError(reason, source=source, line=line + 1) from None


def _parquet_source(part: InputFile, stack: ExitStack) -> Any:
    """Something ``pq.ParquetFile`` can seek in: the local path, a remote file, or a spooled copy."""
    if part.compressed:
        # Parquet needs random access (its index is at the end); gzip has none, so the inflated bytes
        # go to a temporary file on disk rather than into memory.
        spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by the stack
        shutil.copyfileobj(part.open_bytes(stack), spool, 1 << 20)
        spool.seek(0)
        return spool
    if part.local_path is not None:
        return part.local_path
    return stack.enter_context(part.open_stored())


def _check_parquet_type(pa: Any, name: str, kind: Any, source: str) -> None:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    textual = pa.types.is_string(kind) or pa.types.is_large_string(kind) or _is_string_view(pa, kind)
    if name in (CATEGORY_FIELD, LABEL_FIELD):
        if not textual and not pa.types.is_null(kind):
            raise PairInputError(f"column {name!r} has type {kind}; expected text", source=source, field=name)
        return
    if textual or pa.types.is_integer(kind) or pa.types.is_null(kind):
        return
    hint = " (floats lose precision above 2**53)" if pa.types.is_floating(kind) else ""
    raise PairInputError(
        f"column {name!r} has type {kind}; ids must be integers or strings of digits{hint}",
        source=source,
        field=name,
    )


def _is_string_view(pa: Any, kind: Any) -> bool:
    check = getattr(pa.types, "is_string_view", None)
    return bool(check is not None and check(kind))


def _parquet_ids(pa: Any, pc: Any, column: Any) -> tuple[list[Any], bool]:
    """A batch's ids as Python values, and whether all of them are known canonical already.

    The checks run in Arrow's C++ kernels, so a clean batch costs no per-row Python work beyond
    building the tuples.
    """
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if column.null_count:
        return column.to_pylist(), False
    kind = column.type
    if pa.types.is_integer(kind):
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is not None and low > 0 and high <= MAX_ID:
            return pc.cast(column, pa.string()).to_pylist(), True
        return column.to_pylist(), False
    if pa.types.is_null(kind):
        return column.to_pylist(), False
    canonical = pc.match_substring_regex(column, r"^[1-9][0-9]{0,17}$")
    clean = bool(pc.all(canonical).as_py())
    return column.to_pylist(), clean


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
