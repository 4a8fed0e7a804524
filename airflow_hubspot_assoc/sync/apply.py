"""Send a plan's creates and removals through the load machinery, and say which triples HubSpot took.

Why the existing load: it already batches (100 a request), keeps to the rate limits, accounts for
every pair with HubSpot's reason, and checkpoints so that a retried task resumes after the pairs an
earlier try confirmed. The sync hands it a triple set as rows (:class:`TripleRows`: consecutive
triples of one pair become one pair with its types) and reads the load's failed-pairs output back to
learn what was refused: accepted = sent - failed. That is what advances the snapshot.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.association_types import TypeResolver
from airflow_hubspot_assoc.checkpoint import CheckpointStore
from airflow_hubspot_assoc.failed_pairs import FailedPairsSink
from airflow_hubspot_assoc.load import AssociationLoad, LoadSettings
from airflow_hubspot_assoc.pairs import Pair
from airflow_hubspot_assoc.report import LoadReport

if TYPE_CHECKING:
    from airflow_hubspot_assoc.client.sender import AssociationSender
    from airflow_hubspot_assoc.sync.desired import TypeTable
    from airflow_hubspot_assoc.sync.triples import TripleSet, TripleSpool

#: What the load's ``source`` says for a sync's rows.
SOURCES = {"create": "sync creates", "archive": "sync removals"}


class TripleRows:
    """A triple set as the load's input rows: one ``Pair`` per (from, to) with all its types."""

    def __init__(self, triples: TripleSet, table: TypeTable, source: str) -> None:
        self.triples = triples
        self.table = table
        self.source = source

    def __iter__(self) -> Iterator[Pair]:
        line = 0
        current: tuple[int, int] | None = None
        codes: list[int] = []
        for from_id, to_id, code in self.triples:
            if (from_id, to_id) != current:
                if current is not None:
                    line += 1
                    yield self._pair(current, codes, line)
                current, codes = (from_id, to_id), []
            codes.append(code)
        if current is not None:
            yield self._pair(current, codes, line + 1)

    def _pair(self, key: tuple[int, int], codes: list[int], line: int) -> Pair:
        return Pair(str(key[0]), str(key[1]), line, self.source, types=self.table.types_of(tuple(codes)))


@dataclass(frozen=True)
class LoadSetup:
    """How the sync's loads send (the operator's batch arguments)."""

    batch_size: int = 100
    progress_interval: float = 5.0
    checkpoint_interval: float = 0.0
    all_types: bool = False


def _refuse_label(name: str) -> tuple[str, int]:
    raise AssertionError(f"a sync's rows carry resolved types, not label {name!r}")


class TripleLoad:
    """One load of a triple set (``create`` or ``archive``), its checkpoint under the run's folder."""

    def __init__(
        self,
        sender: AssociationSender,
        triples: TripleSet,
        table: TypeTable,
        operation: str,
        *,
        run_folder: str,
        conn_id: str,
        setup: LoadSetup,
        log: logging.Logger,
        stop: threading.Event,
        fingerprint: dict[str, Any],
    ) -> None:
        self.triples = triples
        self.operation = operation
        self.failed_path = f"{run_folder}/failed-{operation}.jsonl"
        self.checkpoint = CheckpointStore(f"{run_folder}/checkpoints", operation, log=log)
        self.report = LoadReport(
            from_type=sender.from_type,
            to_type=sender.to_type,
            conn_id=conn_id,
            source={"kind": "sync", "description": SOURCES[operation]},
            failed_pairs_path=self.failed_path,
            operation=operation,
        )
        self.load = AssociationLoad(
            sender,
            sender.from_type,
            sender.to_type,
            TripleRows(triples, table, SOURCES[operation]),
            TypeResolver((), "HUBSPOT_DEFINED", _refuse_label),
            self.report,
            FailedPairsSink(self.failed_path),
            LoadSettings(
                batch_size=setup.batch_size,
                max_failed_ratio=1.0,
                progress_interval=setup.progress_interval,
                checkpoint_interval=setup.checkpoint_interval,
                operation=operation,
                all_types=setup.all_types,
            ),
            log=log,
            stop=stop,
            checkpoint=self.checkpoint,
            fingerprint={**fingerprint, "rows": len(triples), "operation": operation},
        )
        self.skipped = 0

    def validate(self) -> None:
        """The load's checks before any write (types of the object pair, an archive's scope)."""
        if len(self.triples):
            self.load.validate()

    def send(self) -> None:
        """Send (resuming from a checkpoint of an earlier try), then clear the checkpoint."""
        if not len(self.triples):
            return
        self.skipped = self.load.resume()
        self.load.send()
        self.checkpoint.clear()

    def failed_triples(self, spool: TripleSpool) -> int:
        """Put the triples HubSpot refused into ``spool``; return how many.

        The failed-pairs output names pairs, not types: a refused pair's every triple failed with it
        (they went in one input of one batch).
        """
        failed = failed_keys(self.failed_path) if len(self.triples) else set()
        count = 0
        if failed:
            for triple in self.triples:
                if (triple[0], triple[1]) in failed:
                    spool.add(*triple)
                    count += 1
        return count


def failed_keys(path: str) -> set[tuple[int, int]]:
    """The (from, to) pairs of a failed-pairs file (the sync keeps only its refused ones here)."""
    text = storage.read_text(path) or ""
    keys = set()
    for line in text.splitlines():
        if line.strip():
            entry = json.loads(line)
            if entry.get("from_id") and entry.get("to_id"):
                keys.add((int(entry["from_id"]), int(entry["to_id"])))
    return keys


def combine_failures(target: str, sources: list[tuple[str, str]]) -> int:
    """Write one failed-pairs file for the user from the run's parts: ``(path, operation)`` each,
    every entry tagged with the operation it failed in; no file when nothing failed (a daily sync
    would otherwise leave an empty file a day). :return: entries written."""
    lines = [
        json.dumps({**json.loads(line), "operation": operation}) + "\n"
        for path, operation in sources
        for line in (storage.read_text(path) or "").splitlines()
        if line.strip()
    ]
    if lines:
        with storage.open_for_write(target) as handle:
            handle.writelines(lines)
    return len(lines)
