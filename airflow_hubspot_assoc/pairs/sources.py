"""Finding and opening the input files: local paths, object-storage URLs, directories, globs, gzip.

A ``pairs_path`` may name one file, a directory of shards (a Spark or Hive export, say) or a glob,
locally or as a URL that Airflow's ``ObjectStoragePath`` understands (``s3://``, ``gs://``,
``file://``, ...). This module turns it into a sorted list of :class:`InputFile` once, so that the
validation pass and the send pass read exactly the same parts; every open is streamed, nothing here
reads a file whole.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from airflow_hubspot_assoc.exceptions import PairInputError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Format by (lower-cased) suffix; each may also carry a trailing ``.gz``.
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet"}
SUPPORTED_SUFFIXES = ", ".join(f"{suffix}[.gz]" for suffix in FORMATS)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_GLOB_CHARS = re.compile(r"[*?\[]")


def has_scheme(path: str) -> bool:
    """Whether ``path`` is a URL (``s3://...``, ``file://...``) rather than a plain local path."""
    return _SCHEME.match(path) is not None


def is_hidden(name: str) -> bool:
    """Whether a directory entry is bookkeeping (``_SUCCESS``, ``.crc``, ``_temporary``), not data."""
    return name.startswith((".", "_"))


def detect_format(name: str) -> tuple[str, bool] | None:
    """The format and gzip flag that a file name's suffix announces, or None if unsupported."""
    lowered = name.lower()
    compressed = lowered.endswith(".gz")
    if compressed:
        lowered = lowered[:-3]
    for suffix, fmt in FORMATS.items():
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return fmt, compressed
    return None


@dataclass(frozen=True)
class InputFile:
    """One part of the input: where it is, how it is encoded, and how to open its bytes."""

    #: The path or URL shown in messages and records (the user's own text for a single file).
    source: str
    #: "csv", "jsonl", "json" or "parquet".
    format: str
    #: Whether the bytes are gzip-compressed (by the ``.gz`` suffix).
    compressed: bool
    #: A local file system path, when there is one (lets pyarrow use its native reader).
    local_path: str | None
    #: Opens the stored (still compressed) bytes; called once per pass.
    open_stored: Callable[[], IO[bytes]]

    def open_bytes(self, stack: ExitStack) -> IO[bytes]:
        """Open the decompressed byte stream on ``stack`` (gzip is streamed, never inflated in memory).

        Both layers go on the stack because ``GzipFile`` does not close a file object it was given.
        """
        stored = stack.enter_context(self.open_stored())
        if not self.compressed:
            return stored
        return stack.enter_context(gzip.GzipFile(fileobj=stored, mode="rb"))  # type: ignore[arg-type]


def resolve(path: str, parameter: str = "pairs_path") -> list[InputFile]:
    """Resolve ``path`` to its data files, sorted by path; raise :class:`PairInputError` if there are none.

    A single file must have a supported suffix. A directory contributes every file below it whose
    suffix is supported, skipping hidden entries (``.``/``_`` prefixed, files and directories) and
    anything else (``.crc`` checksums, for example). A glob contributes the files it matches under
    the same rules; ``**`` recurses.
    """
    if not isinstance(path, str) or not path.strip():
        raise PairInputError(f"{parameter} must be a non-empty path or URL, got {path!r}", source=str(path))
    files = _resolve_url(path, parameter) if has_scheme(path) else _resolve_local(path, parameter)
    return sorted(files, key=lambda part: part.source)


def _single(source: str, name: str, local_path: str | None, opener: Callable[[], IO[bytes]]) -> InputFile:
    detected = detect_format(name)
    if detected is None:
        raise PairInputError(
            f"unsupported file type; supported suffixes are {SUPPORTED_SUFFIXES}", source=source
        )
    return InputFile(source, detected[0], detected[1], local_path, opener)


def _local_opener(path: str) -> Callable[[], IO[bytes]]:
    # A larger buffer than the default 8 KiB halves the read calls on big files at no real cost.
    return lambda: open(path, "rb", buffering=1 << 16)


def _part(source: str, local_path: str | None, opener: Callable[[], IO[bytes]]) -> InputFile | None:
    detected = detect_format(source.rsplit("/", 1)[-1])
    if detected is None:
        return None
    return InputFile(source, detected[0], detected[1], local_path, opener)


def _no_parts(path: str, what: str) -> PairInputError:
    return PairInputError(
        f"{what} contains no data files (supported suffixes: {SUPPORTED_SUFFIXES}; "
        "names starting with '.' or '_' are skipped)",
        source=path,
    )


def _resolve_local(path: str, parameter: str) -> list[InputFile]:
    if _GLOB_CHARS.search(path) and not os.path.exists(path):
        base = _glob_base(path)
        parts = []
        for match in glob.glob(path, recursive=True):
            relative = os.path.relpath(match, base) if base else match
            if not os.path.isfile(match) or any(is_hidden(c) for c in relative.split(os.sep) if c != ".."):
                continue
            part = _part(match, match, _local_opener(match))
            if part is not None:
                parts.append(part)
        if not parts:
            raise _no_parts(path, "the glob")
        return parts
    if os.path.isdir(path):
        parts = []
        for directory, subdirs, names in os.walk(path):
            # Pruning in place keeps os.walk out of _temporary/ and .staging/ trees altogether.
            subdirs[:] = [name for name in subdirs if not is_hidden(name)]
            for name in names:
                if is_hidden(name):
                    continue
                full = os.path.join(directory, name)
                part = _part(full, full, _local_opener(full))
                if part is not None:
                    parts.append(part)
        if not parts:
            raise _no_parts(path, "the directory")
        return parts
    if not os.path.exists(path):
        raise PairInputError(f"the file does not exist ({parameter})", source=path)
    return [_single(path, os.path.basename(path), path, _local_opener(path))]


def _glob_base(pattern: str) -> str:
    """The fixed directory in front of the first wildcard, so hidden-name checks skip the user's part."""
    head = pattern[: _GLOB_CHARS.search(pattern).start()]  # type: ignore[union-attr]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def _object_path(url: str, parameter: str) -> ObjectStoragePath:
    from airflow.sdk import ObjectStoragePath

    try:
        return ObjectStoragePath(url)
    except ValueError as err:
        raise PairInputError(f"cannot use this URL for {parameter}: {err}", source=url) from err


def _remote_opener(target: ObjectStoragePath) -> Callable[[], IO[bytes]]:
    return lambda: _open_remote(target)


def _open_remote(target: ObjectStoragePath) -> IO[bytes]:
    """Open through Airflow (connection credentials, lineage), or plain fsspec for unknown schemes.

    Airflow only opens schemes that a provider registered (``s3`` with the Amazon provider, ...),
    while listing a directory already works through fsspec for any scheme it knows (``memory``,
    ``https``, ...); falling back to the same fsspec filesystem keeps those usable too.
    """
    try:
        target.fs  # noqa: B018 - raises ValueError when Airflow has no filesystem for the scheme
    except ValueError:
        import fsspec

        filesystem = fsspec.filesystem(target.protocol, **target.storage_options)
        return filesystem.open(target.path, "rb")
    return target.open("rb")


def _resolve_url(url: str, parameter: str) -> list[InputFile]:
    try:
        return _resolve_url_unchecked(url, parameter)
    except ValueError as err:
        if isinstance(err, PairInputError):
            raise
        # Airflow raises ValueError("No filesystem registered for scheme ...") from its registry.
        raise PairInputError(
            f"cannot read this URL ({err}); install the provider for its scheme "
            "(for example apache-airflow-providers-amazon for s3://) or attach a filesystem",
            source=url,
        ) from err


def _resolve_url_unchecked(url: str, parameter: str) -> list[InputFile]:
    scheme_end = url.index("://") + 3
    wildcard = _GLOB_CHARS.search(url, scheme_end)
    if wildcard is not None:
        base_url, _, _ = url[: wildcard.start()].rpartition("/")
        if len(base_url) < scheme_end:
            raise PairInputError("a glob URL needs a fixed bucket or host before the wildcard", source=url)
        pattern = url[len(base_url) + 1 :]
        base = _object_path(base_url, parameter)
        prefix = str(base).rstrip("/") + "/"
        parts: list[InputFile] = []
        for match in base.glob(pattern):
            text = str(match)
            relative = text[len(prefix) :] if text.startswith(prefix) else match.name
            if any(is_hidden(component) for component in relative.split("/")) or not match.is_file():
                continue
            part = _part(text, None, _remote_opener(match))
            if part is not None:
                parts.append(part)
        if not parts:
            raise _no_parts(url, "the glob")
        return parts
    target = _object_path(url, parameter)
    if target.is_dir():
        parts = []
        prefix = str(target).rstrip("/") + "/"
        for directory, subdirs, names in target.walk():
            subdirs[:] = [name for name in subdirs if not is_hidden(name)]
            relative_dir = str(directory)[len(prefix) :] if str(directory).startswith(prefix) else ""
            if any(is_hidden(component) for component in relative_dir.split("/") if component):
                continue  # in case walk() does not honour the pruning above
            for name in names:
                if is_hidden(name):
                    continue
                child = directory / name
                part = _part(str(child), None, _remote_opener(child))
                if part is not None:
                    parts.append(part)
        if not parts:
            raise _no_parts(url, "the directory")
        return parts
    if not target.exists():
        raise PairInputError(f"the file does not exist ({parameter})", source=url)
    return [_single(url, target.name, None, _remote_opener(target))]
