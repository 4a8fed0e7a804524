"""The ledger: exactly what one run changed in HubSpot, pair by pair, so that it can be reverted.

Why it records states and not requests: HubSpot adds a pair's unlabeled association with its first
label, and removing the unlabeled one removes every label of the pair. What a request *asked* is
therefore not what it *changed*; the ledger keeps, per pair, the types it had before the run (read
once, before the first write) and the types the run added and removed (what HubSpot shows after minus
what it showed before, computed with HubSpot's rules from the before state and the pairs HubSpot
accepted). A revert then removes only what was added and restores only what was removed.

Layout of a ledger (a folder, local or on object storage; nothing is appended, since object stores
cannot append):

* ``before.csv.gz``: ``from,to,types`` for every named pair that had associations before the run
  (a pair missing from it had none). Written before the first write; a resumed try reuses it, because
  a read after a partial write would record the run's own writes as "before".
* ``ledger.json``: object types, portal, operation, the input's fingerprint, the unlabeled type and the
  number of read requests. Written after ``before.csv.gz``: its presence says the before state is whole.
* ``changes-NNNNNN.csv.gz``: ``from,to,before,added,removed``, one line per changed pair, written as the
  load commits (each part whole: a temporary file renamed, or one upload). A pair may appear in several
  parts (a resumed try sends its uncommitted rows again); the last line wins, and since each line is
  computed from the persisted before state, a repeat is identical or a superset.

Types are written ``H279`` (category initial and type id) joined by ``;``. With gzip a changed pair with
random 6 to 9 digit ids costs about 10 bytes (``tests/test_ledger.py`` asserts at most 32).

Pure domain code: files through :mod:`storage`, no HTTP; reading HubSpot is :mod:`ledger_reads`.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from airflow_hubspot_assoc import storage
from airflow_hubspot_assoc.association_types import AssociationType

META_FILE = "ledger.json"
BEFORE_FILE = "before.csv.gz"
PART_PREFIX = "changes-"
FORMAT_VERSION = 1
_CODES = {"HUBSPOT_DEFINED": "H", "USER_DEFINED": "U", "INTEGRATOR_DEFINED": "I", "WORK": "W"}
_CATEGORIES = {code: name for name, code in _CODES.items()}

TypeSet = frozenset[AssociationType]
PairKey = tuple[str, str]
EMPTY: TypeSet = frozenset()


class LedgerEntry(NamedTuple):
    """One changed pair: the types it had before the run, and what the run added and removed."""

    from_id: str
    to_id: str
    before: TypeSet
    added: TypeSet
    removed: TypeSet

    @property
    def after(self) -> TypeSet:
        """The types the pair showed after the run."""
        return (self.before | self.added) - self.removed


class LedgerError(ValueError):
    """A ledger that is missing, damaged, or written for something else."""


def encode_types(types: Iterable[AssociationType]) -> str:
    """``H279;U12``: sorted, so that equal sets encode (and compress) alike."""
    return ";".join(f"{_CODES[t.category]}{t.type_id}" for t in sorted(types))


def decode_types(text: str) -> TypeSet:
    if not text:
        return EMPTY
    try:
        return frozenset(AssociationType(_CATEGORIES[part[0]], int(part[1:])) for part in text.split(";"))
    except (KeyError, ValueError, IndexError) as err:
        raise LedgerError(f"not a ledger types field: {text!r}") from err


def state_after(
    operation: str, current: TypeSet, types: Iterable[AssociationType], unlabeled: AssociationType
) -> TypeSet:
    """What HubSpot shows for a pair after a batch of ``operation`` with ``types`` was accepted.

    * create: the types, plus the unlabeled one (HubSpot adds it with the first label; a default
      association is the unlabeled one).
    * archive: no type (``batch/archive``) or the unlabeled one (cascade) leaves nothing; labels only
      remove themselves.
    """
    wanted = frozenset(types)
    if operation == "create":
        return current | wanted | {unlabeled}
    if not wanted or unlabeled in wanted:
        return EMPTY
    return current - wanted


class Ledger:
    """The files of one ledger under ``location`` (see the module docstring)."""

    def __init__(self, location: str) -> None:
        self.location = str(location).rstrip("/")

    def _path(self, name: str) -> str:
        return f"{self.location}/{name}"

    # -- the header and the before state ---------------------------------------------------
    def meta(self) -> dict[str, Any] | None:
        """The header, or None when no before state was saved here."""
        text = storage.read_text(self._path(META_FILE))
        if text is None:
            return None
        meta: dict[str, Any] = json.loads(text)
        if meta.get("version") != FORMAT_VERSION:
            raise LedgerError(f"{self.location}: ledger format {meta.get('version')!r} is not supported")
        return meta

    def save_before(self, meta: Mapping[str, Any], before: Mapping[PairKey, TypeSet]) -> None:
        """Persist the before state, then the header that marks it complete."""
        lines = "".join(f"{f},{t},{encode_types(types)}\n" for (f, t), types in before.items() if types)
        storage.write_bytes(self._path(BEFORE_FILE), gzip.compress(lines.encode(), mtime=0))
        storage.replace_text(self._path(META_FILE), json.dumps({**meta, "version": FORMAT_VERSION}))

    def load_before(self) -> dict[PairKey, TypeSet]:
        """The saved before state of the pairs that had associations."""
        before: dict[PairKey, TypeSet] = {}
        for fields in self._rows(BEFORE_FILE, 3):
            before[(fields[0], fields[1])] = decode_types(fields[2])
        return before

    # -- changes ---------------------------------------------------------------------------
    def part_names(self) -> list[str]:
        """The change parts written so far, in write order."""
        folder = storage.location(self.location)
        names = [child.name for child in storage.files_under(folder)]
        return sorted(n for n in names if n.startswith(PART_PREFIX) and n.endswith(".csv.gz"))

    def write_part(self, number: int, entries: Iterable[LedgerEntry]) -> None:
        buffer = io.StringIO()
        for e in entries:
            buffer.write(
                f"{e.from_id},{e.to_id},{encode_types(e.before)},{encode_types(e.added)},"
                f"{encode_types(e.removed)}\n"
            )
        data = gzip.compress(buffer.getvalue().encode(), mtime=0)
        storage.write_bytes(self._path(f"{PART_PREFIX}{number:06d}.csv.gz"), data)

    def entries(self) -> Iterator[LedgerEntry]:
        """Every changed pair once (its last line), in first-seen order; unchanged pairs left out."""
        latest: dict[PairKey, LedgerEntry] = {}
        for name in self.part_names():
            for f, t, before, added, removed in self._rows(name, 5):
                latest[(f, t)] = LedgerEntry(
                    f, t, decode_types(before), decode_types(added), decode_types(removed)
                )
        return (entry for entry in latest.values() if entry.added or entry.removed)

    def _rows(self, name: str, width: int) -> Iterator[list[str]]:
        target = storage.location(self._path(name))
        try:
            with target.open("rb") as handle:
                text = gzip.decompress(handle.read()).decode()
        except FileNotFoundError as err:
            raise LedgerError(f"{self._path(name)} is missing") from err
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split(",")
            if len(fields) != width:
                raise LedgerError(f"{self._path(name)} line {number}: expected {width} fields")
            yield fields


class LedgerWriter:
    """What a load calls as it commits: :meth:`record` per accepted pair, :meth:`flush` before each
    checkpoint (so the ledger always covers at least the rows a checkpoint says are done) and at the end.

    It keeps each touched pair's state after the run so far (starting from the before state), so a
    pair named by several rows is recorded once with everything the run did to it.
    """

    def __init__(
        self, ledger: Ledger, before: dict[PairKey, TypeSet], unlabeled: AssociationType, reads: int
    ) -> None:
        self.ledger = ledger
        self.before = before
        self.unlabeled = unlabeled
        #: Read requests the before state cost (the try that read it).
        self.reads = reads
        self._after: dict[PairKey, TypeSet] = {}
        self._pending: dict[PairKey, LedgerEntry] = {}
        self._next_part = 0

    def resume(self) -> None:
        """Continue a ledger an earlier try started: its changes so far, numbering after its parts.

        A pair read after the before state was saved (``ledger_reads.LateReads``) has its before state
        only in its change lines: taken from there, so that the resumed try records it alike.
        """
        names = self.ledger.part_names()
        self._next_part = len(names)
        for entry in self.ledger.entries():
            key = (entry.from_id, entry.to_id)
            self._after[key] = entry.after
            if entry.before:
                self.before.setdefault(key, entry.before)

    def record(self, from_id: str, to_id: str, types: Iterable[AssociationType], operation: str) -> None:
        """Account for one pair HubSpot accepted in a batch of ``operation`` with ``types``."""
        key = (from_id, to_id)
        before = self.before.get(key, EMPTY)
        current = self._after.get(key, before)
        after = state_after(operation, current, types, self.unlabeled)
        if after == current:
            return
        self._after[key] = after
        self._pending[key] = LedgerEntry(from_id, to_id, before, after - before, before - after)

    def flush(self) -> None:
        """Write the entries recorded since the last flush as one part (nothing when there are none)."""
        if not self._pending:
            return
        self.ledger.write_part(self._next_part, self._pending.values())
        self._next_part += 1
        self._pending = {}

    @property
    def changed_pairs(self) -> int:
        """Pairs whose types differ from their before state now."""
        return sum(1 for key, after in self._after.items() if after != self.before.get(key, EMPTY))


def inverse(
    entries: Iterable[LedgerEntry], current: Mapping[PairKey, TypeSet], unlabeled: AssociationType
) -> tuple[
    list[tuple[str, str, tuple[AssociationType, ...]]], list[tuple[str, str, tuple[AssociationType, ...]]]
]:
    """What a revert must do, given what the touched pairs show now: ``(removals, restores)``, each
    ``(from id, to id, types)``.

    Only types the run added and that are still there are removed, and only types it removed that are
    missing are created again: so a second revert finds nothing to do. A removal that takes the
    unlabeled type (the pair had nothing before the run) has no types: it removes the whole pair
    (``batch/archive``), which is what HubSpot's cascade would do anyway. Restores create the removed
    types, the unlabeled one through its type id.
    """
    removals: list[tuple[str, str, tuple[AssociationType, ...]]] = []
    restores: list[tuple[str, str, tuple[AssociationType, ...]]] = []
    for entry in entries:
        now = current.get((entry.from_id, entry.to_id), EMPTY)
        remove = now & entry.added
        if remove:
            removals.append(
                (entry.from_id, entry.to_id, () if unlabeled in remove else tuple(sorted(remove)))
            )
        restore = entry.removed - now
        if restore:
            restores.append((entry.from_id, entry.to_id, tuple(sorted(restore))))
    return removals, restores
