"""Smoke test of ``benchmarks/``: the quick run completes and writes sane results.

Timings are never asserted here: CI machines are shared and noisy, and the benchmark's own table
is where targets are judged. What is checked is that the harness works end to end (stand-in
process, client processes, results file, plot) and that its figures are internally consistent.
"""

from __future__ import annotations

import zlib

import pytest

from benchmarks.harness import Check, trailing_rate
from benchmarks.plot import Canvas, Panel, Series, render
from tests.benchmark_runs import run_quick


def test_check_reports_margin_both_ways():
    met = Check("s", "c", "m", 95.0, ">=", 90.0, "%")
    missed = Check("s", "c", "m", 2.5, "<=", 1.0, "%")
    assert met.passed and met.margin == "met by 5%"
    assert not missed.passed and missed.margin == "missed by 1.5%"
    with pytest.raises(ValueError, match="op must be"):
        Check("s", "c", "m", 1.0, "==", 1.0)


def test_trailing_rate_uses_a_fixed_window():
    # 1,000 pairs at once, then nothing: the trailing 10-s rate is 100/s until the burst leaves the window.
    samples = [[0.5, 1000, 10, 0], [12.0, 1000, 10, 0]]
    rates = dict(trailing_rate(samples, 10.0, step=0.5))
    assert rates[1.0] == pytest.approx(100.0)
    assert rates[10.0] == pytest.approx(100.0)
    assert rates[11.0] == pytest.approx(0.0)


def test_png_is_well_formed(tmp_path):
    panel = Panel("demo", [Series("a", [(0, 0), (1, 5), (2, 3)])], [("ceiling", 4.0)])
    path = render([panel, panel, panel], tmp_path / "p.png", title="Title")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (2 * 560, 26 + 2 * 300)
    # The image data decompresses to one filter byte plus three bytes per pixel per row.
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    assert len(zlib.decompress(data[start : start + length])) == height * (1 + 3 * width)
    assert Canvas.text_width("ab") == 11


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_writes_sane_results(tmp_path):
    out = tmp_path / "results"
    document, printed = run_quick(out, "latency_bound", "cost_per_pair")

    assert document["quick"] is True
    assert document["errors"] == {}
    machine = document["machine"]
    assert machine["cores"] >= 1 and machine["python"] and machine["packages"]["hubspot-api-client"]
    assert set(document["scenarios"]) == {"latency_bound", "cost_per_pair"}
    assert document["checks"], "every scenario states at least one target"
    for check in document["checks"]:
        assert check["op"] in ("<=", ">=")
        assert check["value"] >= 0 and check["target"] > 0
        met = check["value"] <= check["target"] if check["op"] == "<=" else check["value"] >= check["target"]
        assert check["passed"] is met, check
    assert document["passed"] is all(check["passed"] for check in document["checks"])

    (latency,) = document["scenarios"]["latency_bound"]
    figures = latency["figures"]
    assert figures["default_concurrency"] >= 1
    assert figures["throughput_pairs_s"] > 0 and figures["requests_loop_throughput_pairs_s"] > 0
    operator = latency["runs"]["operator"]
    assert operator["created"] == operator["pairs"] == latency["params"]["pairs"]
    assert operator["server"]["spec_violations"] == 0
    assert operator["samples"], "progress was sampled for the plot"

    (cost,) = document["scenarios"]["cost_per_pair"]
    figures = cost["figures"]
    assert figures["operator_created"] == cost["params"]["pairs"]
    assert figures["operator_cpu_us_per_pair"] > 0 and figures["hubspot_cpu_us_per_pair"] > 0
    assert cost["runs"]["hubspot"]["created"] == cost["params"]["baseline_pairs"]

    png = (out / "throughput.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert "throughput vs C x B / L" in printed
