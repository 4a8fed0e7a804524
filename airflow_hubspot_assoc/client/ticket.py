"""The permit the window hands out and takes back: the contract between ``window`` and ``limiter``.

Why its own module: the permit gate and every sender hold tickets without needing the window's rules;
a ticket records what the window knew when the request left, which the answer is then read against.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ticket:
    """A permit to send one request; hand it back with the outcome."""

    sent_at: float
    seq: int
    own: int  # our sends in our window (with its margin) when this one left, itself included
    held: int  # the same without the margin: what the server most likely counts for us
