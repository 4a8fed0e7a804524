"""Run the HubSpot stand-in on its own: ``python -m airflow_hubspot_assoc.testing``.

When it is ready it prints one JSON line to stdout, ``{"url", "token", "connection"}`` (the last
one ready for ``AIRFLOW_CONN_HUBSPOT_DEFAULT``), and serves until SIGTERM or SIGINT, then exits 0.
Other processes can read its counters at ``GET /__standin__/stats`` and zero them with
``POST /__standin__/reset``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from airflow_hubspot_assoc.testing.config import StandInConfig
from airflow_hubspot_assoc.testing.server import HubSpotStandIn


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_hubspot_assoc.testing",
        description="A loopback HTTP server that behaves like HubSpot's associations API.",
    )
    parser.add_argument("--host", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind; 0 picks a free one (default 0)")
    parser.add_argument("--config", type=Path, help="JSON file of StandInConfig fields (nested dicts)")
    parser.add_argument("--api-version", default="v4", help="api_version put in the printed connection")
    parser.add_argument("--port-file", type=Path, help="also write the URL to this file once ready")
    parser.add_argument(
        "--stats-on-exit",
        nargs="?",
        const="-",
        metavar="PATH",
        help="on exit, write the stats as JSON to PATH (stdout when no PATH is given)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve until told to stop; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        config = StandInConfig.from_json_file(args.config) if args.config else StandInConfig()
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        config = dataclasses.replace(config, **overrides)
    except (OSError, ValueError, TypeError) as err:
        print(f"hubspot-standin: bad configuration: {err}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    standin = HubSpotStandIn(config).start()
    try:
        if args.port_file:
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(standin.url + "\n", encoding="utf-8")
            tmp.replace(args.port_file)  # readers never see a half-written file
        ready = {
            "url": standin.url,
            "token": standin.token,
            "connection": standin.connection_uri(api_version=args.api_version),
        }
        print(json.dumps(ready), flush=True)
        # A timeout keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        standin.stop()
    if args.stats_on_exit:
        stats = json.dumps(standin.stats.to_dict())
        if args.stats_on_exit == "-":
            print(stats, flush=True)
        else:
            Path(args.stats_on_exit).write_text(stats + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
