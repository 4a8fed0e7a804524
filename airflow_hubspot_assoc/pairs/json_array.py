"""The JSON-array reader: a ``.json`` file holding one array of pairs, decoded one item at a time.

Why a scanner of its own: ``json.load`` would hold the whole document (and every decoded item) in
memory. The scanner decodes one array item at a time from a buffer of text chunks, so the reader holds
about one chunk plus one item, and it keeps track of the physical line each item starts on, for messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from contextlib import ExitStack
from typing import IO, Any

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs.model import InvalidRow, Pair
from airflow_hubspot_assoc.pairs.rows import NO_KEYS, ItemConverter, KeySides
from airflow_hubspot_assoc.pairs.sources import InputFile
from airflow_hubspot_assoc.pairs.text import TEXT_CHUNK, open_text

#: A single JSON array item larger than this is refused rather than buffered without bound.
MAX_JSON_ITEM = 1 << 20

_DECODER = json.JSONDecoder()
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
    part: InputFile, from_field: str, to_field: str, allow_empty: bool, keys: KeySides = NO_KEYS
) -> Generator[Pair | InvalidRow, None, None]:
    """Yield the items of a file holding one JSON array, decoding one item at a time."""
    source = part.source
    convert = ItemConverter(source, from_field, to_field, keys)
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
