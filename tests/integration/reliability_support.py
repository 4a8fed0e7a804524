"""Shared pieces of the reliability and security tests: inputs, expectations and stand-in bookkeeping.

Why a module of its own: the chaos, crash-and-resume and secrets tests all need the same seeded
inputs, the same "what should HubSpot hold afterwards" computed from the stand-in's own idea of which
records exist, and the same way of telling the package's requests (and 429s) apart in the stand-in's
log. Keeping that in one place keeps the three tests' expectations identical.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_hubspot_assoc.testing import HubSpotStandIn

#: Endpoints that write associations (what "a write request" means in every assertion).
WRITE_ENDPOINTS = frozenset({"batch_create", "batch_associate_default"})
#: Endpoints of the associations API proper (the OAuth token endpoint is not rate limited).
API_ENDPOINTS = frozenset(
    {"batch_create", "batch_associate_default", "batch_read", "labels", "labels_create"}
)
UNLABELED = ("HUBSPOT_DEFINED", 279)  # contacts -> companies, HubSpot's default association


@dataclass(frozen=True)
class PairsFile:
    """A CSV of pairs written for a test, with the rows as written (line numbers are physical)."""

    path: Path
    rows: list[tuple[str, str, int]]  # (from_id, to_id, physical line)


def write_pairs_csv(
    path: Path,
    n: int,
    *,
    seed: int,
    duplicates: int = 0,
    repeatable: Callable[[str, str], bool] | None = None,
    from_base: int = 10_000,
) -> PairsFile:
    """Write ``n`` distinct seeded pairs (plus ``duplicates`` exact repeats, each right after a row
    that ``repeatable`` accepts) as CSV with a header; return them with their physical lines. From ids
    lie in ``[from_base, from_base + 10**7)``, so files with distant bases share no record.

    Repeats are limited to pairs that will be created: a repeat of a failing pair is reported as a
    duplicate or as a second failure depending on where a batch ends, which no test should rely on.
    """
    rng = random.Random(seed)
    from_ids = rng.sample(range(from_base, from_base + 10_000_000), n)
    pairs = [(str(f), str(2_000_000_000 + rng.randrange(5_000))) for f in from_ids]
    ordered: list[tuple[str, str]] = []
    candidates = [i for i, (f, t) in enumerate(pairs) if repeatable is None or repeatable(f, t)]
    repeat_at = set(rng.sample(candidates, duplicates)) if duplicates else set()
    for index, pair in enumerate(pairs):
        ordered.append(pair)
        if index in repeat_at:
            ordered.append(pair)
    lines = ["from_id,to_id"] + [f"{f},{t}" for f, t in ordered]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return PairsFile(path, [(f, t, number + 2) for number, (f, t) in enumerate(ordered)])


def names_missing_record(hs: HubSpotStandIn, from_id: str, to_id: str) -> bool:
    """Whether the stand-in will refuse this pair because one of its records does not exist."""
    return not (hs.record_exists("contacts", from_id) and hs.record_exists("companies", to_id))


@dataclass(frozen=True)
class Expectation:
    """What an uninterrupted, correct load of a ``PairsFile`` must end with."""

    stored: set[tuple[str, str, str, int]]
    failed: set[tuple[str, str, int]]  # (from_id, to_id, line) of rows naming missing records
    total: int


def expectation(hs: HubSpotStandIn, pairs: PairsFile, types: tuple[str, int] = UNLABELED) -> Expectation:
    """The stand-in's final associations and the failed rows, computed from ``hs.record_exists``."""
    stored = set()
    failed = set()
    for from_id, to_id, line in pairs.rows:
        if names_missing_record(hs, from_id, to_id):
            failed.add((from_id, to_id, line))
        else:
            stored.add((from_id, to_id, *types))
    return Expectation(stored, failed, len(pairs.rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The entries of a failed-pairs file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_failed_file(hs: HubSpotStandIn, path: Path, expected: Expectation) -> list[str]:
    """Problems with a failed-pairs file: it must hold exactly the rows naming missing records, each
    with HubSpot's category and a message naming the missing record(s). Empty list when all is well."""
    problems = []
    entries = read_jsonl(path)
    got = {(e["from_id"], e["to_id"], e["line"]) for e in entries}
    if len(entries) != len(got):
        problems.append(f"{len(entries) - len(got)} duplicate entries in {path}")
    if got != expected.failed:
        problems.append(
            f"failed-pairs file differs: {len(got - expected.failed)} unexpected "
            f"{sorted(got - expected.failed)[:5]}, {len(expected.failed - got)} missing "
            f"{sorted(expected.failed - got)[:5]}"
        )
    for entry in entries:
        named = [
            record
            for record, kind in ((entry["from_id"], "contacts"), (entry["to_id"], "companies"))
            if not hs.record_exists(kind, record)
        ]
        if entry.get("category") != "VALIDATION_ERROR" or "not exist" not in str(entry.get("message")):
            problems.append(f"entry without HubSpot's reason: {entry}")
        elif not all(record in entry["message"] for record in named):
            problems.append(f"entry whose message does not name the missing record(s) {named}: {entry}")
    return problems


def api_requests(hs: HubSpotStandIn) -> list[Any]:
    """The associations-API requests the stand-in logged (every test client here is the package)."""
    return [r for r in hs.requests if r.endpoint in API_ENDPOINTS]


def inputs_sent(hs: HubSpotStandIn) -> int:
    """Inputs carried by write requests that reached the stand-in's handlers (any answer)."""
    return sum(r.n_inputs for r in hs.requests if r.endpoint in WRITE_ENDPOINTS)


def throttling(hs: HubSpotStandIn) -> dict[str, int]:
    """429s answered to the package, split into injected storms and the stand-in's rate limit."""
    records = api_requests(hs)
    answered_429 = sum(1 for r in records if r.status == 429)
    storm = int(hs.stats.faults_injected.get("storm_429", 0))
    return {
        "requests": len(records),
        "answered_429": answered_429,
        "storm_429": storm,
        "limit_429": answered_429 - storm,
    }


def issued_access_tokens(hs: HubSpotStandIn) -> list[str]:
    """Every OAuth access token the stand-in has issued (its private registry of bearer tokens)."""
    tokens = hs._dispatcher.auth._tokens  # the stand-in has no public accessor for minted tokens
    return [token for token, credential in list(tokens.items()) if credential.app.startswith("oauth:")]


def find_secrets(texts: Iterable[tuple[str, str]], secrets: Iterable[str]) -> list[str]:
    """``where: secret-prefix`` for every secret found in ``(where, text)`` pairs (prefix only, so a
    failing assertion does not print the secret either)."""
    wanted = [s for s in secrets if s]
    found = []
    for where, text in texts:
        for secret in wanted:
            if secret in text:
                found.append(f"{where}: {secret[:6]}...")
    return found


class StormsAtProgress:
    """Start a 429 storm each time the stand-in has seen ``thresholds[i]`` write requests.

    Why by progress and not by the clock: a storm scheduled from the stand-in's start can fall
    entirely before the load starts, or after it ends, on a busy machine; one triggered by the
    number of writes always lands in the middle of the load.
    """

    def __init__(self, hs: HubSpotStandIn, thresholds: Iterable[int], seconds: float) -> None:
        self._hs = hs
        self._thresholds = sorted(thresholds)
        self._seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="storms", daemon=True)
        self.started = 0

    def _run(self) -> None:
        for threshold in self._thresholds:
            while self._hs.stats.write_requests < threshold:
                if self._stop.wait(0.01):
                    return
            self._hs.start_429_storm(self._seconds)
            self.started += 1

    def __enter__(self) -> StormsAtProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
