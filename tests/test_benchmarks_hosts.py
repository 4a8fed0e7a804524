"""The ``shared_hosts`` benchmark (issue 17) at its quick size: two hosts of four operator processes,
each host with a temporary folder of its own (so a peer board of its own), one app's window.

Timings are never asserted here (the benchmark's own table judges them, on a quiet machine); what
is checked is that the two hosts really were apart (each host's processes met on their own board
only), that every pair was created, and that the figures agree with each other.
"""

from __future__ import annotations

import pytest

from tests.benchmark_runs import run_quick


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_hosts_each_with_its_own_board_share_one_window(tmp_path):
    out = tmp_path / "results"
    document, _ = run_quick(out, "shared_hosts")
    (case,) = document["scenarios"]["shared_hosts"]
    figures = case["figures"]
    assert figures["processes"] == 8 and figures["pairs_total"] == 8 * 3_000
    assert set(figures["host_shares_in_overlap_pct"]) == {"host-a", "host-b"}
    assert sum(figures["host_shares_in_overlap_pct"].values()) == pytest.approx(100.0, abs=0.1)
    assert figures["responses_429"] == sum(figures["per_process_429s_seen"])
    assert {check["metric"] for check in case["checks"]} == {
        "aggregate while both hosts load vs R x B / 10 s",
        "429s as share of requests",
        "smaller host's share while all ran",
    }
    for host in ("host-a", "host-b"):  # each host's processes wrote their board in its own folder
        board = out / "work" / f"tmp-{host}" / "airflow-hubspot-assoc-peers"
        assert board.is_dir(), f"{host} had no peer board of its own"
