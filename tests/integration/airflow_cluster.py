"""A real, throw-away Airflow installation for end-to-end tests: api-server, scheduler, dag-processor
and triggerer as separate processes on loopback, with SQLite and the LocalExecutor.

SQLite with the LocalExecutor is what ``airflow standalone`` runs; Airflow 3.3 accepts it (the
SequentialExecutor is gone and maps to LocalExecutor), so nothing beyond the venv is needed. Workers
report through the api-server's Execution API, so ``[core] execution_api_server_url`` points at it and
every process shares one JWT secret and one Fernet key (trigger kwargs are encrypted with it).

Usage::

    with airflow_cluster(dags={"my_dag.py": source}, env={"AIRFLOW_CONN_X": "..."}) as cluster:
        cluster.wait_for_dag("my_dag")
        cluster.unpause("my_dag")
        run_id = cluster.trigger("my_dag")
        state = cluster.wait_for_run("my_dag", run_id, timeout=240)

Every process runs in its own process group and is stopped at exit (SIGTERM, then SIGKILL);
``cluster.diagnostics()`` gathers the process logs and task logs for assertion messages.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

DEFAULT_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
#: Airflow CLI calls import all of Airflow; on a busy 2-core machine that takes a while.
CLI_TIMEOUT = 180.0


class ClusterError(AssertionError):
    """The cluster did not come up or did not do what was asked; carries the processes' logs."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_environ() -> dict[str, str]:
    """The parent's environment without any Airflow settings (the test session has its own home)."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and key != "AIRFLOW_HOME"
    }


@dataclass
class AirflowCluster:
    """A running Airflow installation; see the module docstring."""

    home: Path
    dags_folder: Path
    api_url: str
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _log_files: dict[str, IO[bytes]] = field(default_factory=dict)
    _token: str | None = None

    # -- processes ------------------------------------------------------------------------------
    def airflow(
        self, *args: str, timeout: float = CLI_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` CLI command against this installation."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"airflow {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
            )
        return result

    def start(self, component: str) -> None:
        """Start one component (``api-server``, ``scheduler``, ...) in its own process group."""
        args = [sys.executable, "-m", "airflow", component]
        if component == "api-server":
            port = urllib.parse.urlsplit(self.api_url).port
            args += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        elif component in ("scheduler", "triggerer"):
            # Their log servers bind every interface on fixed ports; every process here shares the
            # log folder, so they are not needed (and parallel clusters would fight over the ports).
            args.append("--skip-serve-logs")
        log = (self.log_dir / f"{component}.log").open("ab")
        self._log_files[component] = log
        self.processes[component] = subprocess.Popen(
            args,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self, grace: float = 20.0) -> None:
        """Stop every component: SIGTERM to each process group, then SIGKILL what is left."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            # Also children the component left behind in its group (task runners, gunicorn/uvicorn).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        for log in self._log_files.values():
            log.close()
        self._log_files.clear()

    def check_alive(self) -> None:
        """Raise with the logs if a component has exited."""
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise ClusterError(f"Airflow components exited: {dead}\n{self.diagnostics()}")

    # -- the REST API ---------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, *, timeout: float = 30.0) -> Any:
        """Call the public REST API (``/api/v2/...``) and return the parsed JSON answer."""
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._get_token()}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.api_url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def _get_token(self) -> str:
        # simple_auth_manager_all_admins: a token for the asking.
        if self._token is None:
            with urllib.request.urlopen(self.api_url + "/auth/token", timeout=30) as response:
                self._token = str(json.loads(response.read())["access_token"])
        return self._token

    def wait_until_healthy(self, timeout: float = 180.0) -> None:
        """Wait until the api-server answers and reports the scheduler, dag-processor and triggerer."""
        deadline = time.monotonic() + timeout
        last: Any = None
        wanted = {"scheduler", "triggerer", "dag_processor"} & {
            name.replace("-", "_") for name in self.processes
        }
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(self.api_url + "/api/v2/monitor/health", timeout=10) as response:
                    last = json.loads(response.read())
                if all((last.get(name) or {}).get("status") == "healthy" for name in wanted):
                    return
            except (urllib.error.URLError, OSError, ValueError) as err:
                last = repr(err)
            time.sleep(1.0)
        raise ClusterError(f"Airflow did not become healthy in {timeout:.0f}s: {last}\n{self.diagnostics()}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; fail with its import errors if any."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                return dict(self.api("GET", f"/api/v2/dags/{dag_id}"))
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
            errors = self.api("GET", "/api/v2/importErrors").get("import_errors") or []
            if errors:
                raise ClusterError(f"DAG files failed to import: {json.dumps(errors, indent=2)}")
            time.sleep(1.0)
        raise ClusterError(f"DAG {dag_id!r} was not parsed within {timeout:.0f}s\n{self.diagnostics()}")

    # -- runs -----------------------------------------------------------------------------------
    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG with the CLI."""
        self.airflow("dags", "unpause", dag_id)

    def trigger(
        self, dag_id: str, *, conf: Mapping[str, Any] | None = None, run_id: str | None = None
    ) -> str:
        """Trigger a run with ``airflow dags trigger``; return its run id."""
        run_id = run_id or f"e2e__{int(time.time() * 1000)}"
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        self.airflow(*args)
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The state of one DAG run."""
        return str(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 240.0, poll: float = 2.0) -> str:
        """Wait until the run is ``success`` or ``failed`` and return that state (raise at timeout)."""
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(urllib.error.URLError, TimeoutError):
                state = self.run_state(dag_id, run_id)
                if state in TERMINAL_RUN_STATES:
                    return state
            time.sleep(poll)
        raise ClusterError(
            f"Run {dag_id}/{run_id} still {state} after {timeout:.0f}s\n{self.diagnostics(dag_id, run_id)}"
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances of a run, as the REST API gives them."""
        answer = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return list(answer.get("task_instances") or [])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Map task id (``[map_index]`` for mapped tasks) to its state."""
        return {
            (ti["task_id"] if ti.get("map_index", -1) < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti[
                "state"
            ]
            for ti in self.task_instances(dag_id, run_id)
        }

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """A task's XCom value (deserialised); ``map_index`` for one instance of a mapped task."""
        answer = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
            f"?deserialize=true&stringify=false&map_index={map_index}",
        )
        return answer.get("value")

    def audit_events(self, dag_id: str, run_id: str | None = None, task_id: str | None = None) -> list[str]:
        """The audit log's event names for a DAG (oldest first), e.g. ``running``, ``deferred``."""
        query = {"dag_id": dag_id, "order_by": "when", "limit": "500"}
        if run_id:
            query["run_id"] = run_id
        if task_id:
            query["task_id"] = task_id
        answer = self.api("GET", "/api/v2/eventLogs?" + urllib.parse.urlencode(query))
        return [str(entry.get("event")) for entry in answer.get("event_logs") or []]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The log of one try of a task, read from this installation's log folder."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        path = folder / f"attempt={try_number}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def trigger_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """What the triggerer logged for the deferrals of one try (``attempt=N.log.trigger.*.log``)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        paths = sorted(folder.glob(f"attempt={try_number}.log.trigger.*.log"))
        return "\n".join(path.read_text(errors="replace") for path in paths)

    # -- diagnostics ----------------------------------------------------------------------------
    def diagnostics(self, dag_id: str | None = None, run_id: str | None = None, tail: int = 6000) -> str:
        """The tails of every process log and every task log, for assertion messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"===== {path.name} (last {tail} chars) =====\n{text[-tail:]}")
        logs_root = self.home / "logs"
        pattern = f"dag_id={dag_id}/**/*.log" if dag_id else "dag_id=*/**/*.log"
        if logs_root.exists():
            for path in sorted(logs_root.glob(pattern)):
                if run_id and f"run_id={run_id}" not in str(path):
                    continue
                text = path.read_text(errors="replace")
                parts.append(f"===== task log {path.relative_to(logs_root)} =====\n{text[-tail:]}")
        return "\n".join(parts)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@contextlib.contextmanager
def airflow_cluster(
    *,
    dags: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    components: Sequence[str] = DEFAULT_COMPONENTS,
    root: Path | None = None,
    keep_on_failure: bool = True,
) -> Iterator[AirflowCluster]:
    """Migrate a fresh AIRFLOW_HOME, start ``components`` and yield the cluster; stop it at exit.

    :param dags: file name -> source of DAG files to put in the dags folder before start
    :param env: extra environment for every process (connections, ``AIRFLOW__...`` overrides)
    :param components: the Airflow processes to run
    :param root: where to create the home (a fresh temporary directory by default)
    :param keep_on_failure: keep the home (logs, database) when the body raised, for debugging
    """
    home = Path(tempfile.mkdtemp(prefix="airflow-e2e-", dir=root))
    dags_folder = home / "dags"
    dags_folder.mkdir()
    log_dir = home / "process-logs"
    log_dir.mkdir()
    for name, source in (dags or {}).items():
        (dags_folder / name).write_text(source)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    process_env = _clean_environ()
    process_env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            # Narrows apache/airflow#67287 (a resumed deferred task failed by a stale executor event).
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    process_env.update(env or {})
    cluster = AirflowCluster(
        home=home, dags_folder=dags_folder, api_url=api_url, env=process_env, log_dir=log_dir
    )
    failed = True
    try:
        migrate = cluster.airflow("db", "migrate", check=False)
        (log_dir / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
        if migrate.returncode != 0:
            raise ClusterError(
                f"airflow db migrate failed:\n{migrate.stdout[-4000:]}\n{migrate.stderr[-4000:]}"
            )
        for component in components:
            cluster.start(component)
        cluster.wait_until_healthy()
        yield cluster
        failed = False
    finally:
        cluster.stop()
        if failed and keep_on_failure:
            sys.stderr.write(f"Airflow e2e home kept for debugging: {home}\n")
        else:
            shutil.rmtree(home, ignore_errors=True)
