"""Target mlserver: one detached MLServer per environment, with Prometheus metrics.

MLServer's MLflow runtime answers the same /ping and /invocations as
`mlflow models serve` (so the smoke test is unchanged), the Open Inference
Protocol under /v2, and Prometheus metrics on a port of its own: request
counts by status and a request-latency histogram (`rest_server_*`), and
per-model infer counters labelled model and version.

One server serves one registry version, so the version is a property of the
scrape target: the deploy writes a Prometheus file-based service discovery
file, <state-dir>/prometheus/<env>.json, whose target carries the labels
model_name, model_version and environment. Point a `file_sd_configs` entry at
that folder and every deploy and rollback relabels the series by itself.

The model is the registry version's own artifacts, downloaded next to the
server's model-settings.json; the server's Python environment is built from
that version's requirements.txt (mlci.deploy.serving_env).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlci.deploy.serve import (
    ServeFailed,
    ServerState,
    _client_host,
    _tail,
    _wait_port_free,
    free_port,
    read_state,
    state_path,
    stop_server,
)
from mlci.outputs import atomic_write, write_json

# uvloop 0.22 broke MLServer 1.7's inference workers (no event loop in the worker's main thread).
DEFAULT_REQUIREMENTS = ("mlserver==1.7.1", "mlserver-mlflow==1.7.1", "uvloop<0.22")
RUNTIME = "mlserver_mlflow.MLflowRuntime"


@dataclass(frozen=True)
class MLServerSpec:
    environment: str
    model_name: str
    model_version: str
    model_uri: str
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    metrics_port: int = 0
    start_timeout: float = 300.0
    env_manager: str = "uv"
    python: str | None = None
    requirements: tuple[str, ...] = DEFAULT_REQUIREMENTS
    env_cache: str | None = None
    parallel_workers: int = 1


def targets_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "prometheus"


def scrape_labels(model_name: str, model_version: str, environment: str) -> dict[str, str]:
    return {"model_name": model_name, "model_version": str(model_version), "environment": environment}


def write_scrape_target(state_dir: Path, environment: str, address: str, labels: Mapping[str, str]) -> Path:
    """Prometheus file_sd: one target group for the environment's live server."""
    payload = [{"targets": [address], "labels": dict(labels)}]
    return atomic_write(targets_dir(state_dir) / f"{environment}.json", json.dumps(payload, indent=2) + "\n")


def remove_scrape_target(state_dir: Path, environment: str) -> None:
    (targets_dir(state_dir) / f"{environment}.json").unlink(missing_ok=True)


def download_model(model_uri: str, dest: Path, *, tracking_uri: str | None, registry_uri: str | None) -> Path:
    import mlflow
    from mlflow.artifacts import download_artifacts

    if registry_uri:
        mlflow.set_registry_uri(registry_uri)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    path = download_artifacts(artifact_uri=model_uri, dst_path=str(dest), tracking_uri=tracking_uri)
    return Path(path)


def _ready(url: str, timeout: float = 3.0) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _pick_port(wanted: int, previous: int | None, host: str, taken: set[int]) -> int:
    if wanted:
        return wanted
    if previous and previous not in taken and _wait_port_free(host, previous, seconds=5.0):
        return previous
    while True:
        port = free_port(host)
        if port not in taken:
            return port


def start_mlserver(
    spec: MLServerSpec,
    *,
    env: Mapping[str, str],
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    log: Callable[[str], None] = lambda _line: None,
) -> tuple[ServerState, dict]:
    """Stop the environment's previous server, start MLServer on the version, wait until ready."""
    import psutil

    from mlci.deploy import serving_env

    state_dir = Path(spec.state_dir)
    previous = read_state(state_dir, spec.environment)
    previous_raw = _raw_state(state_dir, spec.environment)
    work = state_dir / "mlserver" / spec.environment / f"v{spec.model_version}"
    try:
        model_dir = download_model(spec.model_uri, work / "model", tracking_uri=tracking_uri,
                                   registry_uri=registry_uri)
    except Exception as exc:  # MLflow raises many types; each means the artifacts are out of reach
        raise ServeFailed(f"could not download {spec.model_uri}: {exc}") from exc
    if spec.env_manager == "local":
        interpreter = Path(spec.python or sys.executable)
    else:
        requirements = [*serving_env.read_requirements(model_dir), *spec.requirements]
        try:
            interpreter = serving_env.ensure_env(
                requirements, root=serving_env.cache_dir(dict(env), spec.env_cache), env=dict(env),
                python=spec.python, log=log,
            )
        except serving_env.EnvBuildFailed as exc:
            raise ServeFailed(f"the serving environment could not be built: {exc}", exc.output) from exc

    if previous is not None:
        stop_server(previous)
    remove_scrape_target(state_dir, spec.environment)
    port = _pick_port(spec.port, previous.port if previous and previous.host == spec.host else None, spec.host,
                      set())
    metrics_port = _pick_port(spec.metrics_port, (previous_raw or {}).get("metrics-port"), spec.host, {port})
    grpc_port = _pick_port(0, None, spec.host, {port, metrics_port})
    write_json(work / "settings.json", {
        "host": spec.host, "http_port": port, "grpc_port": grpc_port, "metrics_port": metrics_port,
        "parallel_workers": spec.parallel_workers, "debug": False,
        "metrics_dir": str(work / ".metrics"), "server_name": f"mlci-{spec.environment}",
    })
    write_json(work / "model-settings.json", {
        "name": spec.model_name,
        "implementation": RUNTIME,
        "parameters": {"uri": "./model", "version": str(spec.model_version)},
    })
    url = f"http://{_client_host(spec.host)}:{port}"
    log_path = state_dir / f"{spec.environment}.log"
    # The console script next to the interpreter (`python -m mlserver.cli.main` warns about a double import).
    script = interpreter.parent / "mlserver"
    command = [str(script), "start", str(work)] if script.exists() else \
        [str(interpreter), "-m", "mlserver.cli.main", "start", str(work)]
    child_env = {**env, "MLFLOW_DISABLE_TELEMETRY": env.get("MLFLOW_DISABLE_TELEMETRY", "true")}
    child_env.pop("VIRTUAL_ENV", None)
    with open(log_path, "wb") as handle:
        process = subprocess.Popen(
            command, cwd=work, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
            env=child_env, start_new_session=True,
        )
    state = ServerState(
        environment=spec.environment, pid=process.pid, create_time=psutil.Process(process.pid).create_time(),
        host=spec.host, port=port, url=url, model_uri=spec.model_uri, model_version=str(spec.model_version),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), log=str(log_path),
    )
    metrics_url = f"http://{_client_host(spec.host)}:{metrics_port}/metrics"
    extra = {"server": "mlserver", "metrics-port": metrics_port, "metrics-url": metrics_url,
             "model-dir": str(work), "python": str(interpreter)}
    write_json(state_path(state_dir, spec.environment), {**state.to_json(), **extra, "status": "starting"})
    deadline = time.monotonic() + spec.start_timeout
    while True:
        code = process.poll()
        if code is not None:
            state_path(state_dir, spec.environment).unlink(missing_ok=True)
            raise ServeFailed(f"MLServer exited with code {code} before it was ready", _tail(log_path))
        if _ready(url):
            break
        if time.monotonic() > deadline:
            stop_server(state, grace=5.0)
            state_path(state_dir, spec.environment).unlink(missing_ok=True)
            raise ServeFailed(f"{url}/v2/health/ready did not answer within {spec.start_timeout:g} s",
                              _tail(log_path))
        time.sleep(0.25)
    labels = scrape_labels(spec.model_name, spec.model_version, spec.environment)
    target_file = write_scrape_target(state_dir, spec.environment, f"{_client_host(spec.host)}:{metrics_port}",
                                      labels)
    extra["scrape-target-file"] = str(target_file)
    extra["labels"] = labels
    write_json(state_path(state_dir, spec.environment), {**state.to_json(), **extra, "status": "serving"})
    _prune_versions(work)
    return state, extra


def _raw_state(state_dir: Path, environment: str) -> dict | None:
    try:
        return json.loads(state_path(state_dir, environment).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _prune_versions(current: Path) -> None:
    """Only the live version's files stay; older ones were stopped before this one started."""
    for sibling in current.parent.iterdir():
        if sibling != current and sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)


def spec_from_environment(request, environment) -> MLServerSpec:
    settings = environment.mlserver
    return MLServerSpec(
        environment=environment.name,
        model_name=request.model_name,
        model_version=request.version,
        model_uri=request.model_uri,
        state_dir=request.state_dir,
        host=settings["host"],
        port=int(settings["port"]),
        metrics_port=int(settings["metrics-port"]),
        start_timeout=float(settings["start-timeout"]),
        env_manager=settings["env-manager"],
        python=settings.get("python") or None,
        requirements=tuple(settings["requirements"]),
        env_cache=settings.get("env-cache") or None,
        parallel_workers=int(settings["parallel-workers"]),
    )
