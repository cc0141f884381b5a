"""Target mlflow-serve: one detached `mlflow models serve` per environment.

The server outlives the mlci process (it is the "deployment"), so what runs
where is recorded in a state file, <state-dir>/<env>.json: pid, port, url and
the model version. The next deploy or rollback of that environment stops the
recorded server by PID first, after checking the PID still belongs to the
process we started (PIDs get reused).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlci.outputs import write_json

LOG_TAIL_LINES = 25


class ServeFailed(Exception):
    """The server did not come up; `log_tail` says why."""

    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class ServerState:
    environment: str
    pid: int
    create_time: float  # psutil's process start time: tells our process from a reused PID
    host: str
    port: int
    url: str
    model_uri: str
    model_version: str
    started_at: str
    log: str
    artifact: str = "original"  # original | optimized: which of the version's models runs

    def to_json(self) -> dict:
        return {key.replace("_", "-"): value for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping) -> ServerState:
        fields = cls.__dataclass_fields__
        return cls(**{key.replace("-", "_"): value for key, value in data.items() if key.replace("-", "_") in fields})


def state_path(state_dir: Path, environment: str) -> Path:
    return Path(state_dir) / f"{environment}.json"


def read_state(state_dir: Path, environment: str) -> ServerState | None:
    path = state_path(state_dir, environment)
    try:
        return ServerState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def is_running(state: ServerState) -> bool:
    import psutil

    try:
        process = psutil.Process(state.pid)
        return abs(process.create_time() - state.create_time) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def server_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The scoring server's environment.

    `mlflow models serve` execs `uvicorn` by name; with mlci in a virtualenv that is not activated
    (pipx, a runner calling .venv/bin/mlci) it would not be found, so this interpreter's bin comes first.
    """
    child_env = dict(env)
    bin_dir = os.path.dirname(sys.executable)
    child_env["PATH"] = os.pathsep.join([bin_dir, child_env["PATH"]]) if child_env.get("PATH") else bin_dir
    return child_env


def stop_server(state: ServerState, *, grace: float = 10.0) -> bool:
    """Stop the recorded server and its uvicorn workers; False when it was already gone."""
    import psutil

    if not is_running(state):
        return False
    try:
        leader = psutil.Process(state.pid)
        family = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    # The server was started as a session leader, so its process group holds
    # the uvicorn child too; signal the whole group and wait for every member,
    # since the child keeps the port until it has exited.
    _signal_group(state.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=grace)
    if alive:
        _signal_group(state.pid, signal.SIGKILL)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=5)
    _reap(state.pid)
    return True


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _reap(pid: int) -> None:
    # If this process started the server, collect it so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_port_free(host: str, port: int, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not port_is_free(host, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _pinged(url: str, timeout: float = 1.0) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_server(
    *,
    environment: str,
    model_uri: str,
    model_version: str,
    state_dir: Path,
    artifact: str = "original",
    host: str = "127.0.0.1",
    port: int = 0,
    start_timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    say=None,
) -> ServerState:
    """Stop this environment's previous server, start `model_uri`, wait for /ping, record the state.

    Port 0 keeps the previous server's port (a stable URL for the environment)
    when it can be bound again, otherwise picks a free one.
    """
    import psutil

    state_dir = Path(state_dir)
    previous = read_state(state_dir, environment)
    if previous is not None:
        stop_server(previous)
    if port == 0:
        reuse = previous.port if previous is not None and previous.host == host else 0
        port = reuse if reuse and _wait_port_free(host, reuse, seconds=5.0) else free_port(host)
    url = f"http://{_client_host(host)}:{port}"
    log_path = state_dir / f"{environment}.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", model_uri, "--env-manager", "local", "-h", host, "-p", str(port),
    ]
    child_env = server_environment(os.environ if env is None else env)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
            start_new_session=True,  # survives this job step and can be stopped as a group
        )
    state = ServerState(
        environment=environment,
        pid=process.pid,
        create_time=psutil.Process(process.pid).create_time(),
        host=host,
        port=port,
        url=url,
        model_uri=model_uri,
        model_version=str(model_version),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        log=str(log_path),
        artifact=artifact,
    )
    # Record before waiting, so a server that hangs can still be found and stopped.
    write_json(state_path(state_dir, environment), {**state.to_json(), "status": "starting"})
    from mlci.progress import Progress

    progress = Progress(say, f"waiting for {url}/ping (mlflow models serve, pid {process.pid})")
    progress.start(f"the model loads first; up to {start_timeout:g} s, log: {log_path}")
    deadline = time.monotonic() + start_timeout
    while True:
        code = process.poll()
        if code is not None:
            state_path(state_dir, environment).unlink(missing_ok=True)
            raise ServeFailed(f"`mlflow models serve` exited with code {code} before answering /ping", _tail(log_path))
        if _pinged(url):
            break
        if time.monotonic() > deadline:
            stop_server(state, grace=5.0)
            state_path(state_dir, environment).unlink(missing_ok=True)
            raise ServeFailed(f"{url}/ping did not answer within {start_timeout:g} s", _tail(log_path))
        progress.tick()
        time.sleep(0.25)
    progress.done("answered")
    write_json(state_path(state_dir, environment), {**state.to_json(), "status": "serving"})
    return state
