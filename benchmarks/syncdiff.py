"""The sync diff benchmark's inputs and its two measured sides, each run in a process of its own.

``python -m benchmarks.syncdiff prepare --triples N --data-dir DIR --work DIR`` writes the inputs
once (two CSVs, and the snapshot CSV in the sync's snapshot format); ``python -m benchmarks.syncdiff
ours|duckdb --desired CSV --snapshot FILE --work DIR`` runs one side. Each prints one JSON line; a
side's has the wall time of the work (imports excluded), the peak RSS of the whole process and the
sizes of both anti-joins, so that the parent can check that both sides found the same changes.

- **ours**: read the snapshot file (the sync's own format, written beforehand from the snapshot CSV,
  outside the timing) into a ``TripleSet``; spool the desired triples from the CSV through
  ``pyarrow.csv``'s streaming reader into ``TripleSpool.add_columns`` (the bulk path a sync gets when
  its input is columnar; the sync operator's per-row validation is a separate cost); ``diff()``. The
  creates and removals end as ``TripleSet`` files on disk.
- **duckdb**: one connection (DuckDB's default threads: every core) reads both CSVs and computes both
  anti-joins, each written to a CSV file (``COPY (SELECT ... ANTI JOIN ...) TO ...``): like ours, it
  must produce every create and removal, not only count them.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEADER = ("from_id", "to_id", "type_code")
_FROM_BASE = 51_000_000_001
_TO_BASE = 93_000_000_001
_TO_SPAN = 10_000_000_019  # a prime: the to ids under one from id never collide, and look random
_PAIRS_PER_FROM = 5
_CHUNK = 1_000_000
TYPES = (("HUBSPOT_DEFINED", 279), ("HUBSPOT_DEFINED", 1), ("USER_DEFINED", 12))


def triple_columns(numbers: Any) -> list[Any]:
    """Triples by number: 5 to ids under each from id, ids of 11 to 12 digits like HubSpot's, 3 type
    codes. Distinct numbers give distinct triples."""
    from_ids = _FROM_BASE + numbers // _PAIRS_PER_FROM
    to_ids = _TO_BASE + (numbers * 2_654_435_761) % _TO_SPAN
    return [from_ids, to_ids, numbers % 3]


def ensure_inputs(directory: Path, triples: int) -> tuple[Path, Path, int]:
    """The snapshot CSV (triples 0..n-1) and the desired CSV (1% churn: triples c..n+c-1, c = n / 100),
    each in a shuffled order (as a warehouse export comes), written once. :return: both paths and c."""
    churn = triples // 100
    snapshot = _ensure_csv(directory / f"sync-snapshot-{triples}.csv", 0, triples, seed=1)
    desired = _ensure_csv(directory / f"sync-desired-{triples}.csv", churn, triples + churn, seed=2)
    return snapshot, desired, churn


def _complete(path: Path) -> bool:
    marker = path.with_name(path.name + ".complete")
    return path.exists() and marker.exists() and marker.read_text().strip() == str(path.stat().st_size)


def _mark_complete(path: Path) -> None:
    path.with_name(path.name + ".complete").write_text(str(path.stat().st_size))


def _ensure_csv(path: Path, start: int, stop: int, seed: int) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if _complete(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(stop - start).astype(np.int64) + start
    partial = path.with_name(path.name + ".partial")
    schema = pa.schema([(name, pa.int64()) for name in HEADER])
    with pacsv.CSVWriter(str(partial), schema) as writer:
        for offset in range(0, order.size, _CHUNK):
            columns = triple_columns(order[offset : offset + _CHUNK])
            writer.write_table(pa.table(dict(zip(HEADER, columns, strict=True)), schema=schema))
    partial.replace(path)
    _mark_complete(path)
    return path


def ensure_snapshot(snapshot_csv: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """The snapshot CSV in the sync's snapshot format, written once (outside any timing).

    :return: its path and the figures of writing it (seconds, bytes, bytes per triple).
    """
    from airflow_hubspot_assoc.sync.snapshot import SnapshotMeta, write_snapshot

    path = snapshot_csv.with_suffix(".snapshot")
    info = path.with_name(path.name + ".json")
    if _complete(path) and info.exists():
        return path, json.loads(info.read_text())
    with tempfile.TemporaryDirectory(dir=work) as folder:
        started = time.perf_counter()
        triples = _spool_csv(snapshot_csv, Path(folder))
        spooled = time.perf_counter()
        meta = SnapshotMeta(
            1, TYPES, "contacts", "companies", None, len(triples), "2026-01-01T00:00:00+00:00"
        )
        written = write_snapshot(str(path), triples, meta)
        done = time.perf_counter()
    figures = {
        "spool_s": round(spooled - started, 2),
        "write_s": round(done - spooled, 2),
        "bytes": written,
        "bytes_per_triple": round(written / max(len(triples), 1), 2),
    }
    info.write_text(json.dumps(figures))
    _mark_complete(path)
    return path, figures


def _spool_csv(path: Path, workdir: Path) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from airflow_hubspot_assoc.sync.triples import TripleSpool

    spool = TripleSpool(workdir)
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(HEADER, pa.int64()))
    # The default block size (1 MiB): bigger blocks cost no less time and hundreds of MiB of read-ahead.
    reader = pacsv.open_csv(str(path), convert_options=convert)
    for batch in reader:
        spool.add_columns(*(_int64s(batch.column(i)) for i in range(3)))
    return spool.close()


def _int64s(column: Any) -> Any:
    """An Arrow int64 column without nulls as numpy, zero-copy. (Arrow's ``to_numpy`` imports pandas
    on first use, seconds that have nothing to do with the diff.)"""
    import numpy as np

    if column.null_count:
        raise ValueError("the CSV has an empty id")
    return np.frombuffer(column.buffers()[1], dtype=np.int64, count=len(column), offset=8 * column.offset)


def run_ours(desired: Path, snapshot: Path, work: Path) -> dict[str, Any]:
    """Snapshot file -> TripleSet, desired CSV -> TripleSet, then both anti-joins."""
    import pyarrow.csv  # noqa: F401 - imported before the clock starts, as duckdb is

    from airflow_hubspot_assoc.sync.snapshot import read_snapshot
    from airflow_hubspot_assoc.sync.triples import diff

    started = time.perf_counter()
    base, _ = read_snapshot(str(snapshot), work)
    loaded = time.perf_counter()
    wanted = _spool_csv(desired, work)
    spooled = time.perf_counter()
    changes = diff(wanted, base, work)
    done = time.perf_counter()
    return {
        "wall_s": done - started,
        "read_snapshot_s": loaded - started,
        "spool_desired_s": spooled - loaded,
        "diff_s": done - spooled,
        "creates": len(changes.only_a),
        "removals": len(changes.only_b),
        "unchanged": changes.common,
    }


def run_duckdb(desired: Path, snapshot: Path, work: Path) -> dict[str, Any]:
    """Both CSVs -> both anti-joins, each copied to a CSV file, in one DuckDB connection."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    # Column types given, as pyarrow gets them on our side: no sniffing of types.
    columns = "{" + ", ".join(f"'{name}': 'BIGINT'" for name in HEADER) + "}"
    for table, path in (("desired", desired), ("snapshot", snapshot)):
        con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_csv('{path}', header=true, columns={columns})"
        )
    counts = {}
    for name, left, right in (("creates", "desired", "snapshot"), ("removals", "snapshot", "desired")):
        target = work / f"duckdb-{name}.csv"
        query = f"SELECT * FROM {left} ANTI JOIN {right} USING (from_id, to_id, type_code)"
        con.execute(f"COPY ({query}) TO '{target}' (HEADER)")
        counts[name] = sum(1 for _ in target.open()) - 1
    done = time.perf_counter()
    (total,) = con.execute("SELECT count(*) FROM desired").fetchone() or (0,)
    return {"wall_s": done - started, **counts, "unchanged": int(total) - counts["creates"]}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vm_hwm_kb() -> int:
    """This process's own peak resident memory (``VmHWM``); ``ru_maxrss`` also counts the parent's at
    ``fork``, so the orchestrator's size would leak into a child's figure."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    """One step in this process (prepare the inputs, or one side); one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.syncdiff")
    parser.add_argument("step", choices=("prepare", "ours", "duckdb"))
    parser.add_argument("--triples", type=int, help="prepare: the size of each input")
    parser.add_argument("--data-dir", type=Path, help="prepare: where the inputs go (reused)")
    parser.add_argument("--desired", type=Path, help="ours, duckdb: the desired CSV")
    parser.add_argument("--snapshot", type=Path, help="ours: the snapshot file; duckdb: its CSV")
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.step == "prepare":
        snapshot_csv, desired_csv, churn = ensure_inputs(args.data_dir, args.triples)
        snapshot_file, figures = ensure_snapshot(snapshot_csv, args.work)
        result: dict[str, Any] = {
            "snapshot_csv": str(snapshot_csv),
            "desired_csv": str(desired_csv),
            "snapshot_file": str(snapshot_file),
            "churn": churn,
            "snapshot_write": figures,
        }
    else:
        side = run_ours if args.step == "ours" else run_duckdb
        before = _cpu_s()
        result = side(args.desired, args.snapshot, args.work)
        # CPU of every thread (DuckDB's and Arrow's included), steadier than wall time on a busy
        # machine; the work only, after imports.
        result["cpu_s"] = _cpu_s() - before
        result["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["vm_hwm_kb"] = vm_hwm_kb()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
