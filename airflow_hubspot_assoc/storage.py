"""Files the load and the sync write (failed pairs, checkpoints, snapshots): on disk or object storage.

An object store has objects, not folders. A "folder" there exists only while objects live under its
prefix: ``rmdir`` of a prefix that was just emptied raises (it is already gone), and ``mkdir`` of a
prefix means nothing (on some stores, with ``parents=True``, it even tries to create the bucket). So
this module offers only what both have: write a whole file, read one, list and delete the files under
a prefix. Folders are made and removed only on local disk (a path, or a ``file://`` URL).

Object-storage URLs go through Airflow's ``ObjectStoragePath``, which finds credentials through an
Airflow connection named in the URL: ``s3://aws_default@bucket/key``. Without one
(``s3://bucket/key``) no connection is used, so a connection's ``endpoint_url`` or keys do not apply
and the store's own default credentials are tried instead (:func:`describe_connection` says so).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: ``ObjectStoragePath`` protocols that are a local file system, where folders are real.
LOCAL_PROTOCOLS = frozenset({"file", "local"})


def location(path: str) -> Any:
    """A ``pathlib.Path`` for a local path, an ``ObjectStoragePath`` for a URL (``s3://``, ``file://``...)."""
    if "://" in path:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(path)
    return Path(path)


def has_folders(target: Any) -> bool:
    """Whether ``target`` lives on a file system with real folders (local disk), not an object store."""
    # The protocol first: on Airflow 3.1 an ``ObjectStoragePath`` (an older universal_pathlib's
    # ``UPath``) is a ``pathlib.Path`` too, so ``isinstance`` alone took s3:// for local disk.
    protocol = getattr(target, "protocol", None)
    if protocol is not None:
        return protocol in LOCAL_PROTOCOLS
    return isinstance(target, Path)


def _local_path(target: Path | ObjectStoragePath) -> Path:
    if hasattr(target, "protocol"):  # an ObjectStoragePath of local disk (a Path as well on 3.1)
        return Path(cast("ObjectStoragePath", target).path)
    return cast(Path, target)


def describe_connection(path: str) -> str | None:
    """A warning for an object-storage URL that names no Airflow connection; None when all is well."""
    if "://" not in path:
        return None
    scheme, rest = path.split("://", 1)
    if scheme in LOCAL_PROTOCOLS or scheme == "memory":
        return None
    if "@" in rest.split("/", 1)[0]:
        return None
    return (
        f"{path} names no Airflow connection, so no connection's credentials or endpoint_url apply; "
        f"the store's default credentials are used. Write {scheme}://<conn_id>@{rest} to use one."
    )


def open_for_write(path: str) -> IO[str]:
    """Open a file for writing text; it appears whole when closed (an object store uploads on close)."""
    target = location(path)
    if has_folders(target):
        target.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = target.open("w", encoding="utf-8")
    return handle


def replace_text(path: str, text: str) -> None:
    """Replace a file's content so that a reader sees the old or the new content, never a part.

    Local disk: write a temporary file beside it, then rename it over the old one. Object storage: one
    upload replaces an object whole, so writing it is already atomic.
    """
    target = location(path)
    if not has_folders(target):
        with target.open("w", encoding="utf-8") as handle:
            handle.write(text)
        return
    local = _local_path(target)
    temporary = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.tmp")
    for attempt in (1, 2):
        # A sibling task may remove the shared parent folder once its own load is done (see
        # ``remove_empty_folders``); make it again and retry once if it vanished under us.
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            temporary.write_text(text, encoding="utf-8")
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    os.replace(temporary, local)


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole binary file that readers see whole or not at all (the ledger's gzip parts).

    Local disk: a temporary file beside it, renamed over it. Object storage: one upload.
    """
    target = location(path)
    if not has_folders(target):
        with target.open("wb") as handle:
            handle.write(data)
        return
    local = _local_path(target)
    local.parent.mkdir(parents=True, exist_ok=True)
    temporary = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, local)


def read_text(path: str) -> str | None:
    """A file's content, or None when there is no such file."""
    target = location(path)
    try:
        with target.open("r", encoding="utf-8") as handle:
            text: str = handle.read()
    except FileNotFoundError:
        return None
    return text


@contextlib.contextmanager
def replace_binary(path: str) -> Iterator[IO[bytes]]:
    """Write a binary file whole: readers see the old content or the new, never a part, and a failure
    inside the ``with`` block leaves the old content in place.

    The bytes go to a local temporary file first. Local disk: it is renamed over the target. Object
    storage: it is uploaded in one ``put_file`` only once complete, because a streamed upload that
    fails half-way would still be committed when its handle is closed (fsspec closes on exit).
    """
    target = location(path)
    local = _local_path(target) if has_folders(target) else None
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
    # Not NamedTemporaryFile: its mode is 0600 whatever the umask, and the rename would keep it.
    folder = local.parent if local is not None else Path(tempfile.gettempdir())
    temporary = folder / f".{uuid.uuid4().hex}.tmp"
    try:
        with temporary.open("xb") as sink:
            yield sink
        if local is not None:
            os.replace(temporary, local)
        else:
            target.fs.put_file(str(temporary), target.path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def open_binary(path: str, *, block_size: int | None = None) -> Iterator[IO[bytes]]:
    """Open a file for reading bytes; ``FileNotFoundError`` when there is no such file.

    :param block_size: on object storage, the bytes fetched per request (the store's default, often
        5 MiB, when None): small to read only a header.
    """
    target = location(path)
    options = {"block_size": block_size} if block_size and not has_folders(target) else {}
    with target.open("rb", **options) as handle:
        yield handle


def files_under(folder: Path | ObjectStoragePath) -> Iterator[Path | ObjectStoragePath]:
    """The files below a folder or prefix, at any depth (none when it does not exist)."""
    try:
        children: list[Any] = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for child in children:
        if child.is_dir():
            yield from files_under(child)
        else:
            yield child


def delete_quietly(target: Any, log: logging.Logger) -> bool:
    """Delete one file; log and carry on when that fails. :return: whether it is gone."""
    try:
        target.unlink(missing_ok=True)
    except Exception as err:  # a cleanup must not fail a load that succeeded
        log.warning("Could not delete %s (%s: %s); it is left behind.", target, type(err).__name__, err)
        return False
    return True


def remove_empty_folders(path: str, levels: int) -> None:
    """Remove the local folder ``path`` and up to ``levels - 1`` of its parents while they are empty.

    A no-op on object storage, where a prefix with no objects does not exist. A folder that is not
    empty (a sibling task still uses it) stops the climb.
    """
    target = location(path)
    if not has_folders(target):
        return
    folder = _local_path(target)
    for _ in range(levels):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
