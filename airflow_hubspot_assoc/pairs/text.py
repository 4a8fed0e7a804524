"""UTF-8 text for the line-based and JSON readers: opening it, splitting physical lines, locating bad bytes.

Why apart from the readers: CSV, JSON Lines and JSON arrays all decode the same way (UTF-8, a byte-order
mark dropped, bad bytes an error) and count lines the same way (``\\n``, ``\\r\\n`` and a lone ``\\r``), so
that a line number means the same thing whatever the format. Text is read in chunks, so a reader holds
at most one chunk at a time and memory stays flat however large the input is.
"""

from __future__ import annotations

import codecs
import io
import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs.sources import InputFile

#: Text is decoded in chunks of this many characters: big enough to make per-chunk overhead vanish, small
#: enough that a reader's footprint stays far below any realistic input.
TEXT_CHUNK = 1 << 16
#: Longer lines are refused instead of being read into memory whole (a CSV field is capped far lower
#: by the csv module anyway).
MAX_LINE_CHARS = 1 << 22


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
