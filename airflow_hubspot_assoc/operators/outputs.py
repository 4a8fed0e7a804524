"""What a batch operator derives from its arguments and the task instance before a load starts:
where failed pairs go, where its checkpoint and its ledger live, and the resolver of business keys.

Why apart from the operator: these are small decisions on paths and keys (templated placeholders,
a default checkpoint folder beside the failed pairs, one cache per portal) that every batch operator
makes the same way, and none of them needs the operator itself.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_hubspot_assoc.checkpoint import CheckpointStore, checkpoint_key
from airflow_hubspot_assoc.client.lookup import KeyLookup
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.keys.cache import KeyCache
from airflow_hubspot_assoc.keys.normalise import key_property
from airflow_hubspot_assoc.keys.resolver import KeyResolver
from airflow_hubspot_assoc.ledger import LedgerWriter
from airflow_hubspot_assoc.ledger_reads import LateReads, NamedPairs, open_ledger, unlabeled_type
from airflow_hubspot_assoc.load import AssociationLoad
from airflow_hubspot_assoc.pairs import Pair

#: Suffixes dropped from an input's name for ``{input_name}``.
_DATA_SUFFIXES = (".gz", ".csv", ".jsonl", ".ndjson", ".json", ".parquet")


def failed_pairs_path(template: str | None, pairs_path: Any, ti: Any) -> str | None:
    """``failed_pairs_path`` with ``{map_index}``, ``{input_name}`` and ``{input_dir}`` filled in."""
    if not template:
        return None
    path = str(template)
    if "{" not in path:
        return path
    source = str(pairs_path or "pairs").rstrip("/")
    name = source.rsplit("/", 1)[-1]
    for suffix in _DATA_SUFFIXES:
        name = name.removesuffix(suffix)
    map_index = getattr(ti, "map_index", -1) if ti is not None else -1
    return path.format(
        map_index=map_index, input_name=name, input_dir=source.rsplit("/", 1)[0] if "/" in source else "."
    )


def checkpoint_store(
    checkpoint_path: str | None, failed_path: str | None, ti: Any, *, log: logging.Logger
) -> CheckpointStore | None:
    """The task instance's checkpoint: under ``checkpoint_path``, or ``_checkpoints`` beside the
    failed pairs (a folder the package then owns and removes once empty); None without either."""
    base = checkpoint_path or (
        f"{failed_path.rsplit('/', 1)[0] if '/' in failed_path else '.'}/_checkpoints"
        if failed_path
        else None
    )
    if not base or ti is None:
        log.info("No checkpoints: set checkpoint_path (or failed_pairs_path) to resume after a crash.")
        return None
    key = checkpoint_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index if ti.map_index is not None else -1)
    return CheckpointStore(str(base), key, owns_base=not checkpoint_path, log=log)


def key_resolver(
    hook: HubSpotHook,
    conn_id: str,
    from_side: tuple[str, str | None],
    to_side: tuple[str, str | None],
    cache_path: str | None,
    *,
    log: Any,
) -> KeyResolver | None:
    """The resolver of business keys, its properties checked before any pair is read; None when both
    sides hold record ids. ``from_side``/``to_side``: (object type, id property or None)."""
    from_key = key_property("from_id_property", "from", from_side[0], from_side[1])
    to_key = key_property("to_id_property", "to", to_side[0], to_side[1])
    if from_key is None and to_key is None:
        return None
    # Without a portal id on the connection, its id names the account: keys never mix portals as
    # long as one connection points at one portal.
    portal = hook.portal_id or f"conn-{conn_id}"
    cache = KeyCache(str(cache_path), portal, log=log) if cache_path else None
    # Reads go as many at a time as the load's batches would: the sender's capacity of the moment.
    sender = hook.sender(from_side[0], to_side[0])
    lookup = KeyLookup(hook.client, in_flight=lambda: sender.capacity().now, most=sender.capacity().most)
    resolver = KeyResolver(lookup, from_key, to_key, log=log, cache=cache)
    resolver.check_properties()
    return resolver


def ledger_location(template: str | None, ti: Any) -> str | None:
    """``ledger_path`` with ``{run_id}``, ``{map_index}``, ``{dag_id}`` and ``{task_id}`` filled in."""
    if not template:
        return None
    path = str(template)
    if "{" not in path:
        return path
    return path.format(
        run_id=getattr(ti, "run_id", "run"),
        map_index=getattr(ti, "map_index", -1) if ti is not None else -1,
        dag_id=getattr(ti, "dag_id", "dag"),
        task_id=getattr(ti, "task_id", "task"),
    )


def ledger_input(template: str | None, dry_run: bool, ti: Any) -> tuple[str | None, NamedPairs | None]:
    """Where the load's ledger goes and the collector of its pairs; ``(None, None)`` without one (and
    in a dry run, which changes nothing)."""
    location = None if dry_run else ledger_location(template, ti)
    if not location:
        return None, None
    return location, NamedPairs()


def resolved_pairs(named: NamedPairs, keys: KeyResolver | None) -> NamedPairs:
    """The named pairs with record ids, once ``keys`` are resolved (the input itself when it names ids).

    Why: with business keys the validate pass collects keys, but the ledger's before read and its
    lines speak of HubSpot record ids, the ids the load sends. A pair whose key does not resolve is
    left out: it fails without a write, so it changes nothing a revert would undo. The pairs by key
    are emptied as they are mapped (a million emails cost some 100 MiB, needed no more).
    """
    if keys is None:
        return named
    resolved = NamedPairs()
    while named.by_from:
        from_key, targets = named.by_from.popitem()
        for to_key in targets:
            pair = keys.apply(Pair(from_key, to_key, 0, "ledger"))
            if isinstance(pair, Pair):
                resolved.add(pair.from_id, pair.to_id)
    return resolved


def ledger_writer(
    location: str,
    hook: HubSpotHook,
    load: AssociationLoad,
    operation: str,
    named: NamedPairs,
    *,
    ti: Any,
    log: Any,
) -> LedgerWriter:
    """The load's ledger, its before state read (or reused) before the first write.

    The task instance is part of the fingerprint: only a retry of the same task instance may reuse a
    before state; another run that finds a ledger of the same input at a fixed path fails instead of
    taking that run's before state for its own.
    """
    from_type, to_type = load.from_type, load.to_type
    sender = hook.sender(from_type, to_type)
    fingerprint = {**load.fingerprint, "taskInstance": task_instance_key(ti)}
    meta = {
        "fromType": from_type,
        "toType": to_type,
        "portalId": hook.portal_id,
        "apiVersion": hook.api_version,
        "operation": operation,
        "fingerprint": fingerprint,
    }
    unlabeled = unlabeled_type(sender.association_types())
    writer = open_ledger(location, meta, named, sender.read_associations, unlabeled, log=log)
    if load.keys is not None:  # pairs sent again with fresh ids: their state is read before they are
        load.keys.on_resend = LateReads(writer, named, sender.read_associations)
    return writer


def task_instance_key(ti: Any) -> str | None:
    """``dag/run/task/map index`` of a task instance (None outside Airflow), as checkpoints key them."""
    if ti is None:
        return None
    return checkpoint_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index if ti.map_index is not None else -1)
