"""The ledger's one read before the first write: the named pairs' associations, as HubSpot shows them.

Why here and not in the load: it is the only HubSpot read a ledger needs, done once per ledger (a
resumed try reuses what the first try saved, see :mod:`ledger`), and the revert does the same read
for the pairs of the ledger it reverts. It costs ceil(distinct from ids / 1,000) batch-read requests
plus one per further page; only associations to the to ids that the input names with each from id
are kept, so a ledger never speaks of (and a revert never touches) pairs the user did not name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from airflow_hubspot_assoc.association_types import AssociationType
from airflow_hubspot_assoc.ledger import EMPTY, Ledger, LedgerError, LedgerWriter, PairKey, TypeSet
from airflow_hubspot_assoc.pairs import Pair

#: ``from_ids -> ({from id: [{"toObjectId", "associationTypes"}]}, requests)``: ``sender.read_associations``.
Read = Callable[[Iterable[str]], tuple[dict[str, list[dict[str, Any]]], int]]


class NamedPairs:
    """The pairs an input names, collected in the validate pass (``survey_input``'s ``on_pair``)."""

    def __init__(self) -> None:
        self.by_from: dict[str, set[str]] = {}

    def collect(self, pair: Pair) -> None:
        self.by_from.setdefault(pair.from_id, set()).add(pair.to_id)

    def add(self, from_id: str, to_id: str) -> None:
        self.by_from.setdefault(from_id, set()).add(to_id)


def read_before(read: Read, named: NamedPairs) -> tuple[dict[PairKey, TypeSet], int]:
    """The named pairs' current types (pairs with none left out) and the read requests it took."""
    if not named.by_from:
        return {}, 0
    found, requests = read(sorted(named.by_from, key=lambda i: (len(i), i)))
    before: dict[PairKey, TypeSet] = {}
    for from_id, targets in found.items():
        wanted = named.by_from.get(from_id, set())
        for target in targets:
            to_id = str(target["toObjectId"])
            if to_id not in wanted:
                continue
            types = frozenset(
                AssociationType(str(t["category"]), int(t["typeId"]))
                for t in target.get("associationTypes") or ()
                if t.get("typeId") is not None
            )
            if types:
                before[(from_id, to_id)] = before.get((from_id, to_id), EMPTY) | types
    return before, requests


class LateReads:
    """Read the state of pairs the load is about to send that the before read did not name.

    Why: a business key taken from the key cache may name a record that was merged or deleted since;
    HubSpot refuses the pair, the key is resolved again and the pair sent once more with the fresh id
    (``KeyResolver.retry_stale``, its ``on_resend``). The before read never named that pair, and
    taking it as empty would make a revert remove associations it had before the run. So it is read
    here, on the worker thread, before it is sent; its before state goes into the writer, and from
    there into the change line that records it (``before.csv.gz`` is written once and stays as is).
    """

    def __init__(self, writer: LedgerWriter, named: NamedPairs, read: Read) -> None:
        self.writer = writer
        self.named = named
        self.read = read
        self._lock = threading.Lock()

    def __call__(self, pairs: Sequence[Pair]) -> None:
        late = NamedPairs()
        for pair in pairs:
            if pair.to_id not in self.named.by_from.get(pair.from_id, ()):
                late.add(pair.from_id, pair.to_id)
        if not late.by_from:
            return
        before, requests = read_before(self.read, late)
        with self._lock:
            for from_id, targets in late.by_from.items():
                for to_id in targets:
                    self.named.add(from_id, to_id)
                    if (from_id, to_id) in before:
                        self.writer.before[(from_id, to_id)] = before[(from_id, to_id)]
            self.writer.reads += requests


def unlabeled_type(known: Iterable[Mapping[str, Any]]) -> AssociationType:
    """The object pair's unlabeled HUBSPOT_DEFINED type (what a default association is)."""
    for entry in known:
        if entry.get("category") == "HUBSPOT_DEFINED" and not entry.get("label"):
            return AssociationType("HUBSPOT_DEFINED", int(entry["typeId"]))
    raise LedgerError("HubSpot lists no unlabeled association type for this object pair")


def open_ledger(
    location: str,
    meta: Mapping[str, Any],
    named: NamedPairs,
    read: Read,
    unlabeled: AssociationType,
    *,
    log: logging.Logger,
) -> LedgerWriter:
    """A writer for the ledger at ``location``: a new one (read, then saved before any write), or the
    one an earlier try of the same input started (its before state reused, never read again).

    :param meta: object types, portal, operation and the input's ``fingerprint``.
    """
    ledger = Ledger(location)
    saved = ledger.meta()
    if saved is not None:
        if saved.get("fingerprint") != meta.get("fingerprint"):
            raise LedgerError(
                f"{location} holds the ledger of another input ({saved.get('fingerprint')}, now "
                f"{meta.get('fingerprint')}); give each run its own ledger_path (use {{run_id}})"
            )
        writer = LedgerWriter(ledger, ledger.load_before(), unlabeled, int(saved.get("reads", 0)))
        writer.resume()
        log.info("Ledger: reusing the before state an earlier try saved at %s (no read).", location)
        return writer
    before, requests = read_before(read, named)
    ledger.save_before(
        {**meta, "unlabeled": [unlabeled.category, unlabeled.type_id], "reads": requests}, before
    )
    log.info(
        "Ledger: read %s pairs of %s from ids in %s requests before the first write; saved at %s.",
        f"{sum(len(t) for t in named.by_from.values()):,}",
        f"{len(named.by_from):,}",
        requests,
        location,
    )
    return LedgerWriter(ledger, before, unlabeled, requests)
