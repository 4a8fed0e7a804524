"""``PairReader``: the one object the operator iterates, once to validate and once to send.

It hides where the pairs come from (an XCom list or files), resolves directories and globs once so
both passes see the same parts, turns decoding and gzip failures into :class:`PairInputError` with a
line number, and enforces the input-wide rules (no empty input, one item shape per list).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from airflow_hubspot_assoc.exceptions import HubSpotConfigError, PairInputError
from airflow_hubspot_assoc.pairs.formats import EMPTY_REASONS, READERS
from airflow_hubspot_assoc.pairs.model import XCOM_SOURCE, InvalidRow, Pair
from airflow_hubspot_assoc.pairs.rows import NO_KEYS, ItemConverter, KeySides
from airflow_hubspot_assoc.pairs.sources import InputFile, resolve
from airflow_hubspot_assoc.pairs.text import locate_bad_utf8


def _check_fields(from_id_field: Any, to_id_field: Any) -> None:
    for name, value in (("from_id_field", from_id_field), ("to_id_field", to_id_field)):
        if not isinstance(value, str) or not value.strip():
            raise HubSpotConfigError(f"{name} must be a non-empty column or key name, got {value!r}")
    if from_id_field == to_id_field:
        raise HubSpotConfigError(f"from_id_field and to_id_field must differ, both are {from_id_field!r}")


class PairReader:
    """Iterable over the input pairs; every iteration yields the same ``Pair``/``InvalidRow`` sequence.

    Build it with :meth:`from_pairs` (an XCom list) or :meth:`from_path` (files). Iterating reads
    the input afresh, streaming: memory does not grow with the input. File-level problems raise
    :class:`PairInputError` during iteration, at the point where they are found.
    """

    def __init__(
        self,
        *,
        items: Sequence[Any] | None = None,
        path: str | None = None,
        from_id_field: str = "from_id",
        to_id_field: str = "to_id",
        keys: KeySides = NO_KEYS,
    ) -> None:
        _check_fields(from_id_field, to_id_field)
        self.from_id_field = from_id_field
        self.to_id_field = to_id_field
        #: Which sides hold business keys (kept as trimmed text) instead of record ids.
        self.keys = keys if any(keys) else NO_KEYS
        self._items = items
        self._path = path
        self._files: list[InputFile] | None = None

    @classmethod
    def from_pairs(
        cls,
        pairs: Sequence[Any] | Iterable[Any],
        *,
        from_id_field: str = "from_id",
        to_id_field: str = "to_id",
        keys: KeySides = NO_KEYS,
    ) -> PairReader:
        """Read pairs from a list: ``[from, to]`` lists, objects with the id fields, or HubSpot inputs.

        A one-shot iterable (a generator, say) is copied into a list so that it can be read twice.
        """
        if isinstance(pairs, str | bytes | bytearray | Mapping) or not isinstance(pairs, Iterable):
            raise PairInputError(
                f"pairs must be a list of pairs, got {type(pairs).__name__}; a templated XCom needs "
                "render_template_as_native_obj=True on the DAG to arrive as a list",
                source=XCOM_SOURCE,
            )
        items = pairs if isinstance(pairs, Sequence) else list(pairs)
        return cls(items=items, from_id_field=from_id_field, to_id_field=to_id_field, keys=keys)

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        from_id_field: str = "from_id",
        to_id_field: str = "to_id",
        keys: KeySides = NO_KEYS,
    ) -> PairReader:
        """Read pairs from a file, a directory of parts or a glob, locally or on object storage.

        Nothing is opened here; the parts are listed on first use of :attr:`files` or iteration.
        """
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str) or not path.strip():
            reason = f"pairs_path must be a non-empty path or URL, got {path!r}"
            raise PairInputError(reason, source=str(path))
        return cls(path=path, from_id_field=from_id_field, to_id_field=to_id_field, keys=keys)

    @property
    def files(self) -> list[str]:
        """The resolved input files (sorted) for path input; ``[]`` for lists."""
        return [part.source for part in self._parts()]

    @property
    def description(self) -> str:
        """What is being read, for logs and the batch record: the path, or ``pairs (XCom, N items)``."""
        if self._path is not None:
            return self._path
        count = len(self._items or ())
        return f"{XCOM_SOURCE} (XCom, {count} item{'' if count == 1 else 's'})"

    def _parts(self) -> list[InputFile]:
        if self._path is None:
            return []
        if self._files is None:
            self._files = resolve(self._path)
        return self._files

    def __iter__(self) -> Iterator[Pair | InvalidRow]:
        if self._path is None:
            return self._iter_items()
        return self._iter_files()

    def _iter_items(self) -> Iterator[Pair | InvalidRow]:
        convert = ItemConverter(XCOM_SOURCE, self.from_id_field, self.to_id_field, self.keys)
        for number, item in enumerate(self._items or (), start=1):
            yield convert(item, number)

    def _iter_files(self) -> Generator[Pair | InvalidRow, None, None]:
        parts = self._parts()
        # One empty shard in a Spark/Hive export is normal; an input with no rows at all is not.
        sharded = len(parts) > 1
        any_rows = False
        for part in parts:
            rows = READERS[part.format](part, self.from_id_field, self.to_id_field, sharded, self.keys)
            try:
                first = next(rows, None)
                if first is None:
                    if not sharded:
                        raise PairInputError(f"no pairs: {EMPTY_REASONS[part.format]}", source=part.source)
                    continue
                any_rows = True
                yield first
                yield from rows
            except UnicodeDecodeError:
                # Parquet is binary: a line number of its bytes would mean nothing to anyone.
                line = None if part.format == "parquet" else locate_bad_utf8(part)
                raise PairInputError(
                    "the file holds text that is not UTF-8 (save it as UTF-8)", source=part.source, line=line
                ) from None
            except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                raise PairInputError(f"not a valid gzip file: {err}", source=part.source) from None
            finally:
                rows.close()
        if not any_rows:
            raise PairInputError(f"no pairs in any of the {len(parts)} files", source=self._path or "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"
