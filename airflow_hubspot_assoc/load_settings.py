"""How a load sends (``LoadSettings``) and how it stops on request (``LoadStopped``).

Apart from ``load.py`` to keep that module to the passes and the commit path; ``load`` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_hubspot_assoc.guards import OPERATIONS


@dataclass(frozen=True)
class LoadSettings:
    """How to send: sizes, tolerance and how often to checkpoint (concurrency is the hook's).

    ``checkpoint_interval`` is the least time between two checkpoint writes; 0 writes one after every
    commit (still one write in flight: commits made during a write coalesce into the next).
    """

    batch_size: int = 100
    max_failed_ratio: float = 0.0
    dry_run: bool = False
    progress_interval: float = 5.0
    checkpoint_interval: float = 0.0
    log_failures: int = 100
    #: What a batch does: ``create`` (batch create / associate default) or ``archive``.
    operation: str = "create"
    #: Archive only: allow removing every association of a pair (no type, or the unlabeled one).
    all_types: bool = False
    #: Refuse, before any write, an input that would write more pairs than this (count or share).
    max_writes: int | None = None
    max_write_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, got {self.operation!r}")


class LoadStopped(Exception):
    """``on_kill`` asked the load to stop; raised after the requests in flight were accounted for."""
