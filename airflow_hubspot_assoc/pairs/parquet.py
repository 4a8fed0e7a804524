"""The Parquet reader: the rows of a Parquet file, converted batch by batch.

Why apart from the text readers: Parquet is columnar and needs pyarrow (an optional extra, imported
only when a Parquet file is read) and random access (its index is at the end of the file). Reading one
batch at a time keeps memory flat, and checking a whole batch's ids in Arrow's kernels keeps the per-row
work in Python to building the tuples.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Generator
from contextlib import ExitStack
from typing import Any

from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs.columns import OPTIONAL_FIELDS, find_column
from airflow_hubspot_assoc.pairs.ids import MAX_ID, SAFE_DIGITS
from airflow_hubspot_assoc.pairs.model import CATEGORY_FIELD, LABEL_FIELD, InvalidRow, Pair
from airflow_hubspot_assoc.pairs.rows import NO_KEYS, KeySides, build_pair
from airflow_hubspot_assoc.pairs.sources import InputFile

#: Parquet rows converted per batch.
PARQUET_BATCH = 1 << 13

_new_tuple = tuple.__new__


def read_parquet(
    part: InputFile, from_field: str, to_field: str, allow_empty: bool, keys: KeySides = NO_KEYS
) -> Generator[Pair | InvalidRow, None, None]:
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
            find_column(names, field, parameter, part, 1)
        columns = [from_field, to_field] + [field for field in OPTIONAL_FIELDS if field in names]
        for name in columns:
            _check_parquet_type(pa, name, schema.field(name).type, source)
        for name, keyed in zip((from_field, to_field), keys, strict=True):
            if keyed:
                _check_key_column(pa, name, schema.field(name).type, source)
        if parquet.metadata.num_rows == 0 and allow_empty:
            return
        optional = [columns.index(field) if field in columns else -1 for field in OPTIONAL_FIELDS]
        new = _new_tuple
        pair = Pair
        line = 1
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH, columns=columns):
                from_ids, from_clean = _parquet_ids(pa, pc, batch.column(0))
                to_ids, to_clean = _parquet_ids(pa, pc, batch.column(1))
                if from_clean and to_clean and len(columns) == 2 and not any(keys):
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
                        and keys is NO_KEYS
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
                        keys=keys,
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


def _check_key_column(pa: Any, name: str, kind: Any, source: str) -> None:
    """A key column must be text: integers would have lost the leading zeros of an ``external_id``."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or _is_string_view(pa, kind):
        return
    raise PairInputError(
        f"column {name!r} has type {kind}; an id property's values are text, so the column must hold strings",
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
