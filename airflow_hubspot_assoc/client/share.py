"""Splitting the window with the peer board's processes while others may show only in the headers.

Why apart from the window: these are the pure rules for processes that know some of their peers (the
board, one host) but not all (other hosts' workers meet them only in HubSpot's counts). Every process
reads the same ``-Remaining``; if each took it as its own budget, N processes would spend the same
free slots N times. So each claims only its part of the free room per answer, and no more than an
even share of the window less a small reserve (the reserve is what lets a refused process on another
host get a request through and be seen at all). When the headers show more use than the board's
peers can hold, there are processes beyond the board: the window is then steered (``steering.py``)
rather than split, since an even split per board would hand out the window once per host.
"""

from __future__ import annotations

# Use beyond the board's peers' shares below this many slots (or this share of the limit) is noise.
_BEYOND_MIN_SLOTS = 2.0
_BEYOND_MIN_SHARE = 0.02


def board_claim(own: int, foreign: int, limit: int, peers: int) -> float:
    """Our sends allowed in the window until the next answer: what we hold plus our part of the room."""
    return own + max(0, limit - foreign - own) / peers


def board_share(limit: int, peers: int, target_use: float, foreign: int, claim: float) -> float:
    """How many of our sends may be in the window: an even share, within the room and our claim.

    ``foreign`` (others' use, from the headers) holds until an answer says otherwise: a process that
    was refused and hears nothing for an interval has no news that the others left. It probes (see
    ``WindowState.try_send``) instead of sending a whole share into a full window.
    """
    fair = target_use * limit / peers
    return max(0.0, min(fair, float(limit - foreign), claim))


def beyond_board(foreign: int, limit: int, peers: int, target_use: float) -> bool:
    """Whether others' use shows processes the peer board does not (other hosts' workers, pods).

    Once the split has settled the board's other peers hold at most their even shares; anything
    clearly above that was sent by processes that can only be steered against, not split with.
    """
    board_room = target_use * limit * (peers - 1) / peers
    return foreign > board_room + max(_BEYOND_MIN_SLOTS, _BEYOND_MIN_SHARE * limit)
