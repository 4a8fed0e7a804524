"""A throw-away Airflow on the CeleryExecutor: Redis, PostgreSQL and Celery workers for ``airflow_cluster``.

Why PostgreSQL and not the SQLite of ``airflow_cluster``: with Celery several processes write the
metadata database at once (scheduler, api-server, dag-processor, and every worker's Celery result
backend), which Airflow supports on PostgreSQL or MySQL only. Debian's ``postgresql`` and
``redis-server`` (the Makefile installs both) run here as the current user on free loopback ports, with
their data in temporary folders and durability off (nothing needs to survive the test). PostgreSQL
refuses to run as root, so as root it runs as Debian's ``postgres`` user.

Each worker is ``airflow celery worker`` in its own process group, with its own folder as working
directory, ``TMPDIR`` and task-log folder: what one worker writes to its disk another cannot read, as
on two machines. Its log server is off (two would fight over port 8793), so tests read task logs from
the worker's folder (``CeleryWorker.task_log``).

Usage::

    with celery_cluster(dags={...}, env={...}, workers=("a", "b")) as (cluster, workers):
        ...
        workers[0].kill()   # SIGKILL the worker and every task process it started

Everything is stopped at exit whatever happened: workers first, then Airflow, Redis and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from tests.integration.airflow_cluster import AirflowCluster, ClusterError, airflow_cluster, free_port

#: Without a worker's log server Airflow cannot show its task logs; the Celery runs do not need the UI.
CELERY_COMPONENTS = ("api-server", "scheduler", "dag-processor")


def _stop_group(process: subprocess.Popen[bytes], first: int = signal.SIGTERM, grace: float = 15.0) -> None:
    """Signal a process group, wait, then SIGKILL what is left of it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ClusterError(f"{what} exited {process.returncode}:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} did not listen within {timeout:.0f}s:\n{log.read_text()}")
        time.sleep(0.2)


@contextlib.contextmanager
def redis_server(timeout: float = 30.0) -> Iterator[str]:
    """Debian's ``redis-server`` on a free loopback port, no persistence; yield its ``redis://`` URL."""
    folder = Path(tempfile.mkdtemp(prefix="redis-e2e-"))
    port = free_port()
    log = folder / "redis.log"
    args = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder)]
    args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, process, log, "redis-server", timeout)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop_group(process)
        shutil.rmtree(folder, ignore_errors=True)


def _postgres_bin(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them out of PATH, under ``/usr/lib/postgresql/N/bin``."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise ClusterError(f"PostgreSQL's {name} is not installed (make test installs Debian's postgresql)")
    return path


@contextlib.contextmanager
def postgres_server(timeout: float = 60.0) -> Iterator[str]:
    """A fresh PostgreSQL cluster on a free loopback port; yield the SQLAlchemy URL of its ``airflow`` DB."""
    import psycopg

    folder = Path(tempfile.mkdtemp(prefix="postgres-e2e-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # "root execution of the PostgreSQL server is not permitted"
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    log = folder / "postgres.log"
    init = subprocess.run(
        [*as_user, _postgres_bin("initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8"],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise ClusterError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    port = free_port()
    settings = ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300"]
    args = [*as_user, _postgres_bin("postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port)]
    args += ["-k", str(sockets)] + [arg for s in settings for arg in ("-c", s)]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, process, log, "postgres", timeout)
        deadline = time.monotonic() + timeout
        while True:  # it listens before it accepts connections
            try:
                conn = psycopg.connect(
                    host="127.0.0.1", port=port, user="airflow", dbname="postgres", autocommit=True
                )
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with conn:
            conn.execute("CREATE DATABASE airflow")
        yield f"postgresql+psycopg://airflow@127.0.0.1:{port}/airflow"
    finally:
        _stop_group(process, first=signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class CeleryWorker:
    """One ``airflow celery worker`` with its own folder (cwd, TMPDIR, task logs)."""

    name: str
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    killed_at: float | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def log_folder(self) -> Path:
        return self.folder / "logs"

    @property
    def tmp(self) -> Path:
        return self.folder / "tmp"

    def start(self, env: Mapping[str, str], concurrency: int) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.log_folder.mkdir(exist_ok=True)
        worker_env = {
            **env,
            "TMPDIR": str(self.tmp),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_folder),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        }
        args = [sys.executable, "-m", "airflow", "celery", "worker", "--celery-hostname", f"{self.name}@%h"]
        args += ["--concurrency", str(concurrency), "--skip-serve-logs", "--pid", str(self.folder / "pid")]
        self._log = (self.folder / "worker.log").open("ab")
        self.process = subprocess.Popen(
            args,
            env=worker_env,
            cwd=self.folder,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def descendants(self) -> list[psutil.Process]:
        """The worker's processes below its main one (pool processes, task supervisors, task runners)."""
        if self.process is None:
            return []
        with contextlib.suppress(psutil.NoSuchProcess):
            return list(psutil.Process(self.process.pid).children(recursive=True))
        return []

    def kill(self) -> int:
        """SIGKILL the worker's process group and every process it started (task runners run in groups
        of their own); return how many processes were killed. Nothing gets to clean up, as when a
        machine dies."""
        assert self.process is not None
        victims = [psutil.Process(self.process.pid), *self.descendants()]
        groups = {self.process.pid}
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                groups.add(os.getpgid(proc.pid))
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.killed_at = time.time()
        self.process.wait(timeout=10)
        return len(victims)

    def stop(self) -> None:
        if self.process is not None:
            leftovers = self.descendants()
            _stop_group(self.process, grace=20.0)
            for proc in leftovers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Wait until Celery says the worker is ready (connected to the broker, consuming)."""
        deadline = time.monotonic() + timeout
        log = self.folder / "worker.log"
        while time.monotonic() < deadline:
            if not self.alive():
                raise ClusterError(f"worker {self.name} exited\n{self.diagnostics()}")
            if log.exists() and " ready." in log.read_text(errors="replace"):
                return
            time.sleep(1.0)
        raise ClusterError(f"worker {self.name} not ready within {timeout:.0f}s\n{self.diagnostics()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def task_logs(self, dag_id: str, run_id: str, task_id: str) -> dict[tuple[int, int], Path]:
        """``(map_index, try_number) -> log file`` of the tries this worker ran."""
        folder = self.log_folder / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        found = {}
        for path in folder.glob("map_index=*/attempt=*.log"):
            map_index = int(path.parent.name.split("=", 1)[1])
            found[(map_index, int(path.stem.split("=", 1)[1]))] = path
        return found

    def diagnostics(self, tail: int = 6000) -> str:
        log = self.folder / "worker.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return f"===== worker {self.name} (last {tail} chars) =====\n{text[-tail:]}"


@contextlib.contextmanager
def celery_cluster(
    *,
    dags: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    workers: Sequence[str] = ("worker-a", "worker-b"),
    concurrency: int = 4,
    pools: Mapping[str, int] | None = None,
) -> Iterator[tuple[AirflowCluster, list[CeleryWorker]]]:
    """Start PostgreSQL, Redis, Airflow (CeleryExecutor) and the workers; stop all of it at exit.

    :param pools: pools to create (name -> slots) before the workers start
    """
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(postgres_server())
        broker = stack.enter_context(redis_server())
        celery_env: dict[str, Any] = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            # psycopg 3 for both: Airflow's default async driver for PostgreSQL would be asyncpg.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database.replace("+psycopg", "+psycopg_async"),
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database,
            "AIRFLOW__CORE__PARALLELISM": str(4 * concurrency * len(workers)),
        }
        cluster = stack.enter_context(
            airflow_cluster(dags=dags, env={**celery_env, **(env or {})}, components=CELERY_COMPONENTS)
        )
        for name, slots in (pools or {}).items():
            cluster.airflow("pools", "set", name, str(slots), f"{name} (e2e)")
        root = Path(tempfile.mkdtemp(prefix="celery-workers-"))
        started = [CeleryWorker(name, root / name) for name in workers]
        failed = True
        try:
            for worker in started:
                worker.start(cluster.env, concurrency)
            for worker in started:
                worker.wait_ready()
            yield cluster, started
            failed = False
        finally:
            for worker in started:
                worker.stop()
            if failed:
                sys.stderr.write(f"Celery workers' folders kept for debugging: {root}\n")
            else:
                shutil.rmtree(root, ignore_errors=True)
