"""Helpers shared by the tests: real DAG runs, input files, connections and rate-window counts.

One definition of each, imported where needed (``conftest.py`` files hold fixtures only: pytest
does not want them imported).
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

# The tests run their DAGs the way the README tells users to.
from airflow_hubspot_assoc.testing.dags import run_dag as run_dag

if TYPE_CHECKING:
    from pathlib import Path

    import fsspec
    import pytest
    from airflow.models.dagrun import DagRun

    from airflow_hubspot_assoc.pairs import InvalidRow, Pair
    from airflow_hubspot_assoc.testing import HubSpotStandIn, OAuthApp


def task_results(dag_run: DagRun) -> dict[str, Any]:
    """Map task id (with ``[map_index]`` for mapped tasks) to its XCom return value."""
    results: dict[str, Any] = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        results[key] = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
    return results


def task_states(dag_run: DagRun) -> dict[str, str]:
    """Map task id (with ``[map_index]`` for mapped tasks) to its final state."""
    return {
        (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
        for ti in dag_run.get_task_instances()
    }


def dag_id(request: pytest.FixtureRequest) -> str:
    """A DAG id unique to the running test (its name, parameters included, as a valid id)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:200]


# -- input files -------------------------------------------------------------------------------------
def write_csv(
    path: Path, rows: list[tuple[object, ...]], header: tuple[str, ...] = ("from_id", "to_id")
) -> Path:
    """A CSV file written by the csv module, as a warehouse export would be."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def csv_text(pairs: Sequence[tuple[object, object]]) -> str:
    """Pairs as the text of a CSV file with a header."""
    return "from_id,to_id\n" + "".join(f"{f},{t}\n" for f, t in pairs)


#: The kinds of path input the operator accepts, as ``write_input`` writes them.
INPUT_KINDS = [
    "csv",
    "csv.gz",
    "jsonl",
    "json",
    "parquet",
    "sharded",
    "glob",
    "file-url",
    "memory-url",
    "memory-dir",
]


def write_input(
    tmp_path: Path,
    kind: str,
    pairs: Sequence[tuple[int, int]],
    memory_bucket: tuple[fsspec.AbstractFileSystem, str],
) -> str:
    """Write ``pairs`` (five or more) as one input of ``kind`` (see ``INPUT_KINDS``); return its path or URL.

    Directories and globs hold what real exports hold next to the data: an empty partition, a part
    in another format, a ``_SUCCESS`` marker, a file the glob must not match.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"from_id": f, "to_id": t} for f, t in pairs]
    if kind == "csv":
        return str(write_csv(tmp_path / "pairs.csv", list(pairs)))
    if kind == "csv.gz":
        path = tmp_path / "pairs.csv.gz"
        path.write_bytes(gzip.compress(csv_text(pairs).encode()))
        return str(path)
    if kind == "jsonl":
        path = tmp_path / "pairs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)
    if kind == "json":
        path = tmp_path / "pairs.json"
        path.write_text(json.dumps(rows, indent=1))
        return str(path)
    if kind == "parquet":
        path = tmp_path / "pairs.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        return str(path)
    if kind == "sharded":
        shards = tmp_path / "export"
        shards.mkdir()
        write_csv(shards / "part-000.csv", list(pairs[:2]))
        write_csv(shards / "part-001.csv", [])  # an empty partition, as Spark writes them
        (shards / "part-002.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[2:]))
        (shards / "_SUCCESS").write_text("")
        return str(shards)
    if kind == "glob":
        write_csv(tmp_path / "a.csv", list(pairs[:3]))
        write_csv(tmp_path / "b.csv", list(pairs[3:]))
        write_csv(tmp_path / "other.txt", [(9, 9)])
        return str(tmp_path / "*.csv")
    if kind == "file-url":
        return "file://" + str(write_csv(tmp_path / "pairs.csv", list(pairs)))
    fs, prefix = memory_bucket
    if kind == "memory-url":
        fs.pipe(f"{prefix}/pairs.csv", csv_text(pairs).encode())
        return f"memory:/{prefix}/pairs.csv"
    if kind == "memory-dir":
        fs.pipe(f"{prefix}/out/part-0.csv.gz", gzip.compress(csv_text(pairs[:4]).encode()))
        fs.pipe(f"{prefix}/out/part-1.csv", csv_text(pairs[4:]).encode())
        fs.pipe(f"{prefix}/out/_SUCCESS", b"")
        return f"memory:/{prefix}/out"
    raise AssertionError(kind)


def read_all(path: str | Path, **kwargs: str) -> list[Pair | InvalidRow]:
    """Every row of a path input, as the operator's validation pass sees it."""
    from airflow_hubspot_assoc.pairs import PairReader

    return list(PairReader.from_path(str(path), **kwargs))


def ids(rows: list[Pair | InvalidRow]) -> list[tuple[str | None, str | None]]:
    """The (from, to) ids of the rows, for compact assertions."""
    return [(row.from_id, row.to_id) for row in rows]


def assert_well_formed(row: Pair | InvalidRow, source: str) -> None:
    """What any row a reader yields must hold, whatever the input: it names where it came from; a pair
    carries canonical ids (what HubSpot accepts as record ids); an invalid row says what is wrong."""
    from airflow_hubspot_assoc.pairs import MAX_ID, Pair

    assert row.source == source, row
    assert row.line is None or row.line >= 1, row
    if isinstance(row, Pair):
        assert row.line is not None, row
        for value in (row.from_id, row.to_id):
            assert value.isascii() and value.isdigit() and value[0] != "0" and int(value) <= MAX_ID, row
    else:
        assert row.reason.strip(), row


# -- connections -----------------------------------------------------------------------------------
def oauth_connection_json(
    hs: HubSpotStandIn, client_id: str, client_secret: str, refresh_token: str, **extra: Any
) -> str:
    """``AIRFLOW_CONN_...`` JSON for an OAuth connection to the stand-in."""
    return json.dumps(
        {
            "conn_type": "hubspot",
            "host": hs.url,
            "extra": {
                "client_id": client_id,
                "client_secret": client_secret,
                "refresh_token": refresh_token,
                **extra,
            },
        }
    )


def oauth_connection(
    monkeypatch: pytest.MonkeyPatch, hs: HubSpotStandIn, app: OAuthApp, **extra: Any
) -> None:
    """Register ``app`` with the stand-in and point ``hubspot_default`` at it with OAuth."""
    hs.add_oauth_app(app)
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        oauth_connection_json(hs, app.client_id, app.client_secret, app.refresh_token, **extra),
    )


# -- rate windows ----------------------------------------------------------------------------------
def max_in_any_window(times: list[float], interval: float) -> int:
    """The most of ``times`` that fall in any half-open window ``(t - interval, t]``."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - interval:
            start += 1
        best = max(best, end - start + 1)
    return best
