"""Running ``python -m benchmarks.run --quick`` from the benchmark smoke tests, one way for all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_quick(out: Path, *scenarios: str, timeout: float = 280) -> tuple[dict[str, Any], str]:
    """Run the named scenarios at their quick size into ``out``; return ``results.json`` and the
    printed table."""
    only = [arg for name in scenarios for arg in ("--only", name)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--quiet", *only, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), done.stdout
