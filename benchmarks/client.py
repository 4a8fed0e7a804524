"""One benchmark client, run in its own process: ``python -m benchmarks.client SPEC.json``.

Why a process per client: the figures that matter (CPU per pair, peak RSS) must describe the client
alone, not the stand-in serving it nor the orchestrator polling it, and a fresh process per run
keeps one run's memory and threads from leaking into the next one's numbers.

Three kinds of client run on the same CSV:

* ``operator``: ``BatchCreateAssociationsOperator(...).execute(context)``, the way a worker runs it,
  minus the scheduler; the connection comes from ``AIRFLOW_CONN_HUBSPOT_DEFAULT``.
* ``requests``: the loop a hurried engineer writes: ``csv`` + ``requests.Session``, one batch at a time.
* ``hubspot``: the same loop with HubSpot's official ``hubspot-api-client`` and its model classes.

The loops are the baselines: they send the same batches to the same endpoint with the same types.
When told to (``wait_for_go``), a client prints ``READY`` once it has imported everything and built
what it needs, then waits for a line on stdin, so that several processes start sending together.
The result is written as JSON to ``spec["result_path"]``; stdout and stderr are left to logs.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The association every client creates: contacts -> companies, HubSpot's unlabeled built-in type.
FROM_TYPE = "contacts"
TO_TYPE = "companies"
ASSOCIATION_CATEGORY = "HUBSPOT_DEFINED"
ASSOCIATION_TYPE_ID = 279
BATCH_SIZE = 100
#: How long a baseline loop waits after a 429 when the answer does not say: HubSpot's window is 10 s,
#: and a plain loop that retries after one second is what most hand-written scripts do.
BASELINE_429_PAUSE_S = 1.0


def _rusage() -> dict[str, float]:
    """CPU and peak memory of this process.

    Linux carries ``ru_maxrss`` across ``fork`` + ``exec``: a client's figure is at least its parent's
    RSS at spawn. ``VmHWM`` (the peak of this process's own address space) is recorded next to it, so
    a reader can tell when the two disagree; the orchestrator stays far smaller than a client.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"user_s": usage.ru_utime, "system_s": usage.ru_stime, "maxrss_kb": usage.ru_maxrss}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    figures["vm_hwm_kb"] = int(line.split()[1])
    except OSError:
        pass
    return figures


def _batches(path: str, limit: int | None) -> Iterator[list[tuple[str, str]]]:
    """Batches of (from, to) ids from a CSV with a header, as a simple script reads them."""
    batch: list[tuple[str, str]] = []
    sent = 0
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            batch.append((row[0], row[1]))
            if len(batch) == BATCH_SIZE:
                yield batch
                batch = []
                sent += 1
                if limit is not None and sent >= limit:
                    return
    if batch:
        yield batch


class ProgressSampler:
    """Samples ``(epoch, pairs created, requests sent, 429s)`` of the operator's load a few times a second.

    Why a sampler thread and not the operator's progress log: the log is meant for people and comes
    through structlog; the load's report and its sender's counters are plain integers that a thread can
    read cheaply. The operator builds its ``AssociationLoad`` inside ``execute``, so the class is
    wrapped to remember the instance; nothing in the package is changed. Four wake-ups a second cost
    microseconds, far below what the figures resolve.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int, int, int]] = []
        self._loads: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def install(self) -> None:
        """Remember every ``AssociationLoad`` built from now on."""
        from airflow_hubspot_assoc import load as load_module

        original = load_module.AssociationLoad.__init__
        loads = self._loads

        def remembering_init(load: Any, *args: Any, **kwargs: Any) -> None:
            original(load, *args, **kwargs)
            loads.append(load)

        load_module.AssociationLoad.__init__ = remembering_init  # type: ignore[method-assign,assignment]

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        if not self._loads:
            return
        load = self._loads[-1]
        stats = load.sender.counters()
        self.samples.append(
            (time.time(), int(load.report.created), int(stats.requests), int(stats.throttled))
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


def _profiled(call: Any, path: str) -> Any:
    """Run ``call`` with cProfile on in this thread and in every thread started meanwhile.

    cProfile sees one thread only, and the load sends from a thread pool: a profile hook installed
    with ``threading.setprofile`` starts a profiler in each new thread on its first event. Each
    profiler times with its thread's CPU clock, so that waiting on sockets and queues counts as
    nothing (with the default wall clock, idle workers would top the list). The merged statistics
    are written to ``path`` (``pstats`` format).
    """
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []

    def start_profiler(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()

    main = cProfile.Profile(time.thread_time)
    threading.setprofile(start_profiler)
    main.enable()
    try:
        return call()
    finally:
        main.disable()
        threading.setprofile(None)
        stats = pstats.Stats(main)
        for profile in profiles:
            stats.add(profile)
        stats.dump_stats(path)


def _relative(samples: list[tuple[float, int, int, int]], started: float) -> list[list[float]]:
    return [[round(t - started, 3), created, sent, throttled] for t, created, sent, throttled in samples]


def _ready(spec: dict[str, Any]) -> None:
    """Tell the orchestrator we are set up and, if asked, wait for everybody's start signal."""
    if spec.get("wait_for_go"):
        print("READY", flush=True)
        sys.stdin.readline()


def run_operator(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the operator's ``execute`` once; return timings, CPU and the batch record's counts."""
    from airflow_hubspot_assoc.operators.associations import BatchCreateAssociationsOperator

    kwargs: dict[str, Any] = {
        "task_id": "bench_associations",
        "from_object_type": spec.get("from_type", FROM_TYPE),
        "to_object_type": spec.get("to_type", TO_TYPE),
        "pairs_path": spec["pairs_path"],
        "association_type_id": int(spec.get("type_id", ASSOCIATION_TYPE_ID)),
        "association_category": ASSOCIATION_CATEGORY,
        "batch_size": BATCH_SIZE,
        "progress_interval": float(spec.get("progress_interval", 5.0)),
    }
    if spec.get("max_concurrency") is not None:
        kwargs["max_concurrency"] = int(spec["max_concurrency"])
    # Loads by business keys (``key_resolution``): id fields, id properties, key_cache_path, ...
    kwargs.update(spec.get("operator_kwargs") or {})
    operator = BatchCreateAssociationsOperator(**kwargs)
    sampler = ProgressSampler()
    sampler.install()
    setup_cpu = time.process_time()
    _ready(spec)
    started = time.time()
    sampler.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if spec.get("cprofile_path"):
        record = _profiled(lambda: operator.execute({}), spec["cprofile_path"])
    else:
        record = operator.execute({})
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finished = time.time()
    sampler.stop()
    keep = (
        "status",
        "total",
        "created",
        "failed",
        "invalid",
        "duplicates",
        "requests",
        "retries",
        "throttled",
        "resolution",
    )
    return {
        "kind": "operator",
        "max_concurrency": operator.max_concurrency,
        "samples": _relative(sampler.samples, started),
        "started": started,
        "finished": finished,
        "wall_s": wall,
        "cpu_s": cpu,
        "setup_cpu_s": setup_cpu,
        "pairs": int(record.get("total", 0)),
        "created": int(record.get("created", 0)),
        "requests": int(record.get("requests", 0)),
        "throttled": int(record.get("throttled", 0)),
        "record": {k: record.get(k) for k in keep},
    }


def _loop_result(
    kind: str,
    samples: list[tuple[float, int, int, int]],
    started: float,
    wall0: float,
    cpu0: float,
    setup_cpu: float,
    *,
    pairs: int,
    created: int,
    sent: int,
    throttled: int,
) -> dict[str, Any]:
    """The result record of a sequential baseline loop (the same fields for every kind)."""
    return {
        "kind": kind,
        "samples": _relative(samples, started),
        "started": started,
        "finished": time.time(),
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": time.process_time() - cpu0,
        "setup_cpu_s": setup_cpu,
        "pairs": pairs,
        "created": created,
        "requests": sent,
        "throttled": throttled,
    }


def run_requests(spec: dict[str, Any]) -> dict[str, Any]:
    """A sequential ``requests`` loop: build JSON, POST, parse the answer, count; retry 429s after a pause."""
    import requests

    url = f"{spec['url'].rstrip('/')}/crm/v4/associations/{FROM_TYPE}/{TO_TYPE}/batch/create"
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {spec['token']}", "Content-Type": "application/json"})
    types = [{"associationCategory": ASSOCIATION_CATEGORY, "associationTypeId": ASSOCIATION_TYPE_ID}]
    setup_cpu = time.process_time()
    _ready(spec)
    pairs = created = sent = throttled = 0
    samples: list[tuple[float, int, int, int]] = []
    started = time.time()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for batch in _batches(spec["pairs_path"], spec.get("max_batches")):
        body = json.dumps(
            {"inputs": [{"from": {"id": f}, "to": {"id": t}, "types": types} for f, t in batch]}
        )
        while True:
            response = session.post(url, data=body, timeout=60)
            sent += 1
            if response.status_code != 429:
                break
            throttled += 1
            time.sleep(float(response.headers.get("Retry-After") or BASELINE_429_PAUSE_S))
        response.raise_for_status()
        created += len(response.json().get("results") or ())
        pairs += len(batch)
        samples.append((time.time(), created, sent, throttled))
    return _loop_result(
        "requests",
        samples,
        started,
        wall0,
        cpu0,
        setup_cpu,
        pairs=pairs,
        created=created,
        sent=sent,
        throttled=throttled,
    )


def run_hubspot(spec: dict[str, Any]) -> dict[str, Any]:
    """A sequential ``hubspot-api-client`` loop (models, ``BatchApi.create``); retries 429s after a pause."""
    import hubspot
    from hubspot.crm.associations.v4 import (
        AssociationSpec,
        BatchInputPublicAssociationMultiPost,
        PublicAssociationMultiPost,
        PublicObjectId,
    )
    from hubspot.crm.associations.v4.exceptions import ApiException

    # The generated clients read ``host`` from the client's keyword arguments into their Configuration.
    client = hubspot.Client.create(access_token=spec["token"], host=spec["url"].rstrip("/"))
    api = client.crm.associations.v4.batch_api
    setup_cpu = time.process_time()
    _ready(spec)
    pairs = created = sent = throttled = 0
    samples: list[tuple[float, int, int, int]] = []
    started = time.time()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for batch in _batches(spec["pairs_path"], spec.get("max_batches")):
        body = BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id=f),
                    to=PublicObjectId(id=t),
                    types=[AssociationSpec(ASSOCIATION_CATEGORY, ASSOCIATION_TYPE_ID)],
                )
                for f, t in batch
            ]
        )
        while True:
            sent += 1
            try:
                answer = api.create(FROM_TYPE, TO_TYPE, body)
            except ApiException as err:
                if err.status != 429:
                    raise
                throttled += 1
                retry_after = dict(err.headers or {}).get("Retry-After")
                time.sleep(float(retry_after or BASELINE_429_PAUSE_S))
                continue
            break
        created += len(answer.results or ())
        pairs += len(batch)
        samples.append((time.time(), created, sent, throttled))
    return _loop_result(
        "hubspot",
        samples,
        started,
        wall0,
        cpu0,
        setup_cpu,
        pairs=pairs,
        created=created,
        sent=sent,
        throttled=throttled,
    )


RUNNERS = {"operator": run_operator, "requests": run_requests, "hubspot": run_hubspot}


def main(argv: list[str] | None = None) -> int:
    """Run the client described by the spec file and write its result file."""
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    result = RUNNERS[spec["kind"]](spec)
    result.update(_rusage())
    result["pid"] = os.getpid()
    Path(spec["result_path"]).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
