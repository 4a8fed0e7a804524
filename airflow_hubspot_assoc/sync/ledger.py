"""A sync run's ledger (issue 14's format), so that ``RevertAssociationsOperator`` can undo the run.

Why the plan names the pairs: a sync knows, before its first write, exactly which pairs it will touch
(its planned creates and removals; everything else is unchanged by definition). So the before read
covers those pairs only, ceil(distinct from ids / 1,000) batch-read requests plus further pages, not
the whole input, and a revert never touches a pair the run did not. The plan of a retry is the saved
one (``runs/<run key>/plan.json``), so its fingerprint matches and the before state the first try
saved is reused, never read again after a partial write.
A try that finds nothing to change because the task committed before (its XCom lost, or the task
cleared and run again) keeps the ledger the earlier try wrote instead of refusing it as another run's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_hubspot_assoc.ledger import Ledger, LedgerWriter
from airflow_hubspot_assoc.ledger_reads import NamedPairs, open_ledger, unlabeled_type

if TYPE_CHECKING:
    from airflow_hubspot_assoc.client.sender import AssociationSender
    from airflow_hubspot_assoc.sync.plan import Plan


def plan_pairs(plan: Plan) -> NamedPairs:
    """The (from, to) pairs the plan creates or removes types of, each once."""
    named = NamedPairs()
    for triples in (plan.creates, plan.removals):
        for from_id, to_id, _ in triples:
            named.add(str(from_id), str(to_id))
    return named


@dataclass(frozen=True)
class SyncLedger:
    """Where a sync run's ledger goes and what identifies the run (for a retry's reuse).

    :param location: the ledger folder (``ledger_path`` with ``{run_id}`` etc. filled in)
    :param portal: the HubSpot portal, checked by the revert
    :param api_version: the connection's API version, recorded as the other ledgers do
    :param task_instance: ``dag/run/task/map index``: only a retry of the same task reuses the before state
    """

    location: str
    portal: str | None
    api_version: str
    task_instance: str | None

    def open(
        self, sender: AssociationSender, plan: Plan, plan_location: str, log: logging.Logger
    ) -> LedgerWriter:
        """Read (or, on a retry, reuse) the touched pairs' before state; return the writer the loads
        record into as they commit."""
        fingerprint = {
            "plan": plan_location,
            "generation": plan.state_generation,
            "creates": len(plan.creates),
            "removals": len(plan.removals),
            "taskInstance": self.task_instance,
        }
        meta = {
            "fromType": sender.from_type,
            "toType": sender.to_type,
            "portalId": self.portal,
            "apiVersion": self.api_version,
            "operation": "sync",
            "fingerprint": fingerprint,
        }
        unlabeled = unlabeled_type(sender.association_types())
        ledger = Ledger(self.location)
        saved = ledger.meta()
        if (
            saved is not None
            and not len(plan.creates)
            and not len(plan.removals)
            and (saved.get("fingerprint") or {}).get("taskInstance") == self.task_instance
        ):
            # This task ran before and committed (a retry after the commit, or a cleared task run
            # again): its ledger is whole and this try changes nothing, so it is kept as it is.
            log.info(
                "Ledger: nothing to change; the ledger this task wrote earlier stays at %s.", self.location
            )
            return LedgerWriter(ledger, {}, unlabeled, int(saved.get("reads", 0)))
        return open_ledger(
            self.location, meta, plan_pairs(plan), sender.read_associations, unlabeled, log=log
        )
