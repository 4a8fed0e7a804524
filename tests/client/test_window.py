"""The window state machine on its own (no lock, no thread), and the file peer board on real files."""

from __future__ import annotations

import itertools
import os

import pytest

from airflow_hubspot_assoc.client.headers import HEADER_INTERVAL, HEADER_MAX, HEADER_REMAINING
from airflow_hubspot_assoc.client.peers import STALE_AFTER_S, FilePeerBoard
from airflow_hubspot_assoc.client.share import (
    SharedPace,
    beyond_board,
    board_claim,
    board_share,
    shared_gap,
    shared_in_flight,
)
from airflow_hubspot_assoc.client.window import WindowState


def headers(limit: int, remaining: int, interval_ms: int = 10_000) -> dict[str, str]:
    return {HEADER_MAX: str(limit), HEADER_REMAINING: str(remaining), HEADER_INTERVAL: str(interval_ms)}


def send_all(state: WindowState, now: float) -> list:
    tickets = []
    while (ticket := state.try_send(now)[0]) is not None:
        tickets.append(ticket)
    return tickets


def send_over(state: WindowState, start: float, seconds: float, others: int) -> list[float]:
    """Send whatever the state allows from ``start`` for ``seconds``, each answered 0.1 s later with
    the server's count (``others`` plus ours); return the send times."""
    now, sent, due = start, [], []
    while now < start + seconds:
        for ticket in [t for t in due if t.sent_at + 0.1 <= now]:
            state.release(ticket, 200, headers(100, max(0, 100 - others - ticket.held)), None, now)
            due.remove(ticket)
        ticket, _ = state.try_send(now)
        if ticket is not None:
            sent.append(now)
            due.append(ticket)
            continue
        now = round(now + 0.01, 6)
    return sent


def test_alone_the_whole_window_then_one_more_per_expiry():
    state = WindowState(max_in_flight=4, ramp=0.0)
    first, wait = state.try_send(0.0)
    assert first is not None and state.try_send(0.0) == (None, None)  # one at a time until an answer
    state.release(first, 200, headers(10, 9), None, 0.1)
    burst = send_all(state, 0.1)
    assert len(burst) == 9  # the window's room, far beyond max_in_flight
    for ticket in burst:
        state.release(ticket, 200, headers(10, 0), None, 0.2)
    ticket, wait = state.try_send(0.2)
    assert ticket is None and wait == pytest.approx(10.0 + state.margin - 0.2)
    assert state.try_send(10.0 + state.margin)[0] is not None


def test_known_peers_split_the_window_evenly_once_the_old_split_has_left_it():
    state = WindowState(max_in_flight=4, ramp=0.0, share_reserve=0.0)
    first, _ = state.try_send(0.0)
    state.release(first, 200, headers(100, 99), None, 0.1)
    burst = send_all(state, 0.1)
    assert len(burst) == 99  # alone: all of it
    for i, ticket in enumerate(burst):
        state.release(ticket, 200, headers(100, 98 - i), None, 0.2)
    state.set_peers(4, 1.0)
    # Others' sends are unknown yet and ours fill the window: nothing more until they leave it.
    assert state.try_send(1.0)[0] is None
    settled = 1.0 + 10.0 + state.margin + 1.0
    assert state.snapshot(settled)["level"] == 25  # then a quarter each (no reserve asked here)
    sent = send_over(state, settled, 9.0, others=70)  # room beyond our share: the share binds
    assert len(sent) == 25  # spread over the window, not in one burst
    assert min(b - a for a, b in itertools.pairwise(sent)) >= 0.6 * 10.0 / 25 - 1e-9
    state.set_peers(2, settled + 1)  # two left: half each, within what the server reports free
    assert state.current_level(settled + 1) <= 50
    later = settled + 1 + 12.0
    assert state.current_level(later) <= 100 - 70  # the room last reported, until answers say more
    send_over(state, later, 9.0, others=50)  # the two that left have left the window too
    assert 49 <= state.current_level(later + 9.0) <= 50  # half each, claimed by parts of the room


def test_a_newcomer_probes_then_grows_into_its_share_by_its_part_of_the_room():
    """A refused newcomer hears nothing for an interval: that is no news that the others left. It
    probes once, then claims, answer by answer, its part (a quarter) of the room reported free."""
    state = WindowState(max_in_flight=4, ramp=0.0, share_reserve=0.0)
    first, _ = state.try_send(0.0)
    state.set_peers(4, 0.0)
    state.release(first, 429, headers(100, 0), None, 0.1)  # the others hold the whole window
    ticket, wait = state.try_send(0.2)
    assert ticket is None and 0 < wait <= 10.0 + state.margin + 1.0
    probe = send_all(state, 12.0)
    assert len(probe) == 1  # one probe, not a quarter of the window into a full one
    others, now, most = 75, 12.1, 0
    pending = probe
    for _ in range(95):  # the three others have shrunk to 75: answers report what is left
        for ticket in pending:
            state.release(ticket, 200, headers(100, 100 - others - ticket.held), None, now)
        now += 0.1
        pending = send_all(state, now)
        most = max(most, len(state._log))
    # its share, never more (the last slots come as the others' answers shift the room)
    assert 22 <= most <= 25


def test_the_file_board_counts_processes_that_beat_recently(tmp_path):
    now = [1_000.0]
    a = FilePeerBoard("host|app", root=tmp_path, wall=lambda: now[0], member="a")
    b = FilePeerBoard("host|app", root=tmp_path, wall=lambda: now[0], member="b")
    other_app = FilePeerBoard("host|other", root=tmp_path, wall=lambda: now[0], member="c")
    assert a.beat_and_count() == 1
    assert b.beat_and_count() == 2
    assert other_app.beat_and_count() == 1
    assert a.beat_and_count() == 1  # read at most every half second: the last figure
    now[0] += 0.6
    assert a.beat_and_count() == 2
    now[0] += STALE_AFTER_S + 0.1  # b stopped wanting to send
    assert a.beat_and_count() == 1
    b.leave()
    assert not b.path.exists() and a.path.exists()
    a.leave()
    assert not a.folder.exists()  # the last one out leaves nothing behind
    assert "host" not in str(a.folder) and "app" not in a.folder.name  # a fingerprint, not the key


def test_the_file_board_forgets_files_of_dead_processes_and_survives_a_read_only_dir(tmp_path):
    now = [1_000_000.0]
    a = FilePeerBoard("k", root=tmp_path, wall=lambda: now[0], member="a")
    a.beat_and_count()
    dead = a.folder / "12345-dead"
    dead.touch()
    os.utime(dead, (now[0] - 7200, now[0] - 7200))
    now[0] += 1
    assert a.beat_and_count() == 1 and not dead.exists()
    blocked = FilePeerBoard("k", root=tmp_path / "file", wall=lambda: now[0])
    (tmp_path / "file").write_text("not a folder")
    assert blocked.beat_and_count() == 1


def test_known_peers_leave_room_for_processes_of_other_hosts_seen_in_the_headers():
    """The board shows one host: four peers here, four more on another Celery worker. A quarter each
    would be twice the window; while the headers show the others' sends, F bounds the share."""
    state = WindowState(max_in_flight=4, ramp=0.0)
    state.set_peers(4, 0.0)
    settled = 10.0 + state.margin + 1.0 + 1.0
    first, _ = state.try_send(settled)
    # 88 of 100 counted, 1 of them ours: 87 sent by the others (three peers here, four elsewhere)
    state.release(first, 200, headers(100, 12), None, settled + 0.1)
    level = state.current_level(settled + 0.2)
    assert level <= 100 - 87 < 25
    assert len(send_all(state, settled + 0.2)) <= 100 - 87 - 1
    assert state.sharing  # others beyond the board's peers: steered against, not split with
    # an interval later they may still be there: no jump to a quarter of the window
    assert state.current_level(settled + 0.1 + 10.0 + 0.01) <= 100 - 87
    # an answer two intervals later that shows only the board's peers: the board's even split again
    later = settled + 0.1 + 20.0 + 0.01
    probe, _ = state.try_send(later)
    assert probe is not None
    state.release(probe, 200, headers(100, 40), None, later + 0.1)  # 59 others: the board's three
    assert not state.sharing
    # then its part of the free room, answer by answer, up to the board's share less the reserve
    assert 1 < state.current_level(later + 0.2) <= 0.97 * 100 / 4


def test_board_peers_claim_their_part_of_the_room_and_notice_processes_beyond_the_board():
    # four peers read the same 20 free slots: each claims a quarter of them, not all 20
    assert board_claim(own=10, foreign=70, limit=100, peers=4) == 10 + 20 / 4
    # an even share, within the room others leave and our claim
    assert board_share(100, 4, 0.98, foreign=60, claim=30.0) == pytest.approx(24.5)
    assert board_share(100, 4, 0.98, foreign=90, claim=30.0) == 10
    assert board_share(100, 4, 0.98, foreign=60, claim=12.0) == 12
    # three peers here hold at most 3/4 of the window; clearly more is other hosts' use
    assert not beyond_board(foreign=75, limit=100, peers=4, target_use=0.98)
    assert beyond_board(foreign=87, limit=100, peers=4, target_use=0.98)


def test_with_peers_on_the_board_sends_are_spread_and_few_in_flight():
    """Four peers: each sends its even share over most of the window, one request at a time apart,
    and keeps at most two in flight: every decision then rests on a fresh count (issue 17: bursts of
    eight processes deciding on the same stale count were what HubSpot refused)."""
    state = WindowState(max_in_flight=8, ramp=0.0, share_reserve=0.05)
    state.set_peers(4, 0.0)
    settled = 10.0 + state.margin + 2.0
    first, _ = state.try_send(settled)
    state.release(first, 200, headers(100, 99), None, settled + 0.15)
    now = settled + 0.15
    assert state.cap(now) == 2  # few in flight while sharing, at this round trip
    ticket, _ = state.try_send(now)
    assert ticket is not None
    ticket, wait = state.try_send(now)
    assert ticket is None and wait == pytest.approx(0.6 * 10.0 / (100 / 4))  # an even share's pace
    capped = WindowState(max_in_flight=1, max_burst=1, ramp=0.0)  # the caller's cap still holds
    capped.set_peers(4, 0.0)
    first, _ = capped.try_send(settled)
    capped.release(first, 200, headers(100, 99), None, settled + 0.15)
    assert capped.cap(settled + 0.15) == 1
    alone = WindowState(max_in_flight=8, ramp=0.0)
    first, _ = alone.try_send(0.0)
    alone.release(first, 200, headers(100, 99), None, 0.15)
    assert len(send_all(alone, 0.15)) == 99  # alone: the whole window at once, as before


def test_sharing_keeps_in_flight_what_its_pace_needs_twice_and_spreads_an_even_share():
    assert shared_in_flight(10.0, 10.0, None) == 2  # no round trip measured yet
    assert shared_in_flight(12.0, 10.0, 0.15) == 2
    assert shared_in_flight(95.0, 10.0, 0.4) == 8  # a big share at a slow round trip: 7.6 -> 8
    assert shared_gap(25.0, 100, 10.0, pace=0.5, spread=0.6) == pytest.approx(0.24)
    assert shared_gap(25.0, 100, 10.0, pace=0.5, spread=0.0) == pytest.approx(0.05)  # pace alone
    assert shared_gap(0.0, 100, 10.0, pace=0.5, spread=0.6) == pytest.approx(6.0)  # never / 0


def test_a_steered_process_spreads_its_own_level_and_a_lone_one_only_keeps_the_pace():
    """Two Celery workers: steered to a level of 20 (half the board's even share of 25 would be 12.5),
    each process spreads its 20 over the window; its board's even share would bunch them into a
    burst that every process repeats at once (issue 17's Celery run: 12-second cycles)."""
    pace = SharedPace(pace=0.5, spread=0.6)
    assert pace.gap(20.0, 100, 10.0, peers=4, steered=True) == pytest.approx(0.6 * 10.0 / 20)
    assert pace.gap(5.0, 100, 10.0, peers=4, steered=True) == pytest.approx(0.6 * 10.0 / 12.5)
    assert pace.gap(5.0, 100, 10.0, peers=4, steered=False) == pytest.approx(0.6 * 10.0 / 25)
    assert pace.gap(5.0, 100, 10.0, peers=1, steered=True) == pytest.approx(0.5 * 10.0 / 100)
    assert pace.in_flight(20.0, 10.0) == 2
    pace.answered(1.0)  # a slow round trip: more in flight to keep the level's pace
    assert pace.round_trip == 1.0 and pace.in_flight(20.0, 10.0) == 4
    pace.answered(0.0)
    assert pace.round_trip == pytest.approx(0.8)
