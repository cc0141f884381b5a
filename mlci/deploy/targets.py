"""Deploy targets: put one pinned model version into one environment.

Each target either returns a TargetResult (the version is live, or for
Kubernetes without a cluster: the manifests are ready) or raises
TargetFailed. The caller moves registry markers only after a result, so a
failed target never half-promotes a version.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.deploy.settings import Environment
from mlci.errors import CheckFailed

OUTPUT_TAIL_LINES = 30


class TargetFailed(CheckFailed):
    """The deploy target reported failure (exit 1); the registry markers were not moved."""


@dataclass(frozen=True)
class DeployRequest:
    model_name: str
    version: str
    environment: Environment
    tracking_uri: str | None = None
    registry_uri: str | None = None
    out_dir: Path = Path("mlci-out")
    state_dir: Path = Path(".mlci/serve")
    annotations: Mapping[str, str] = field(default_factory=dict)  # CI links for Kubernetes objects
    artifact: str = "original"  # original | optimized
    served_uri: str | None = None  # the optimized model's own pinned URI, when that is served

    @property
    def model_uri(self) -> str:
        # Pinned to the version: an alias would silently change under a running deployment.
        return self.served_uri or f"models:/{self.model_name}/{self.version}"

    def variables(self) -> dict[str, str]:
        values = {
            "MLCI_MODEL_URI": self.model_uri,
            "MLCI_MODEL_NAME": self.model_name,
            "MLCI_MODEL_VERSION": self.version,
            "MLCI_ENVIRONMENT": self.environment.name,
            "MLCI_MODEL_ARTIFACT": self.artifact,
        }
        if self.tracking_uri:
            values["MLFLOW_TRACKING_URI"] = self.tracking_uri
        if self.registry_uri:
            values["MLFLOW_REGISTRY_URI"] = self.registry_uri
        return values


@dataclass
class TargetResult:
    target: str
    url: str | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


Log = Callable[[str], None]


def run_target(request: DeployRequest, *, base_env: Mapping[str, str], log: Log, warn: Log) -> TargetResult:
    target = request.environment.target
    if target == "command":
        return _run_command(request, base_env=base_env, log=log)
    if target == "mlflow-serve":
        return _run_mlflow_serve(request, base_env=base_env, log=log)
    if target == "mlserver":
        return _run_mlserver(request, base_env=base_env, log=log)
    if target == "kubernetes":
        return _run_kubernetes(request, base_env=base_env, log=log, warn=warn)
    raise TargetFailed(f"unknown deploy target '{target}'")


def _stream(command: list[str] | str, *, env: Mapping[str, str], timeout: float, log: Log, shell: bool = False):
    """Run a command, relay its output line by line (through mlci's redaction), keep a tail."""
    tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
    process = subprocess.Popen(
        command,
        shell=shell,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )

    def relay() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log(line)

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(process.pid)
        process.wait()
        reader.join(timeout=5)
        return None, "\n".join(tail)
    reader.join(timeout=5)
    return code, "\n".join(tail)


def _kill_tree(pid: int) -> None:
    # A shell line's children (`sleep`, a deploy CLI) hold the output pipe open; stop them all.
    import psutil

    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for process in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _run_command(request: DeployRequest, *, base_env: Mapping[str, str], log: Log) -> TargetResult:
    environment = request.environment
    command = environment.command
    env = {**base_env, **request.variables()}
    shell = isinstance(command, str)
    shown = command if shell else " ".join(command)
    try:
        code, tail = _stream(command, env=env, timeout=environment.command_timeout, log=log, shell=shell)
    except OSError as exc:
        raise TargetFailed(
            f"deploy command for '{environment.name}' could not start: {exc}",
            hint="check deploy.environments[].command in mlci.yml",
        ) from exc
    if code is None:
        raise TargetFailed(
            f"deploy command for '{environment.name}' timed out after {environment.command_timeout:g} s: {shown}",
            hint="raise command-timeout, or make the command finish once the model is live",
        )
    if code != 0:
        raise TargetFailed(
            f"deploy command for '{environment.name}' exited with code {code}: {shown}"
            + (f"\nlast output:\n{tail}" if tail else ""),
        )
    return TargetResult(
        target="command",
        url=environment.url,
        summary=f"deploy command exited 0 ({shown})",
        details={"command": command, "exit-code": 0},
    )


def _run_mlflow_serve(request: DeployRequest, *, base_env: Mapping[str, str], log: Log | None = None) -> TargetResult:
    from mlci.deploy.serve import ServeFailed, start_server

    environment = request.environment
    serve = environment.serve
    try:
        state = start_server(
            environment=environment.name,
            model_uri=request.model_uri,
            model_version=request.version,
            artifact=request.artifact,
            state_dir=request.state_dir,
            host=serve["host"],
            port=int(serve["port"]),
            start_timeout=float(serve["start-timeout"]),
            env={**base_env, **request.variables()},
            say=log,
        )
    except ServeFailed as exc:
        raise TargetFailed(
            f"mlflow models serve of {request.model_uri} for '{environment.name}' failed: {exc}"
            + (f"\nlast server output:\n{exc.log_tail}" if exc.log_tail else ""),
            hint="the environment's previous server was stopped; `mlci rollback` or a re-deploy restarts one",
        ) from exc
    return TargetResult(
        target="mlflow-serve",
        url=environment.url or state.url,
        summary=f"serving {request.model_uri} at {state.url} (pid {state.pid})",
        details={"pid": state.pid, "port": state.port, "server-url": state.url, "log": state.log},
    )


def _run_mlserver(request: DeployRequest, *, base_env: Mapping[str, str], log: Log) -> TargetResult:
    from mlci.deploy.mlserver import spec_from_environment, start_mlserver
    from mlci.deploy.serve import ServeFailed

    environment = request.environment
    try:
        state, extra = start_mlserver(
            spec_from_environment(request, environment),
            env={**base_env, **request.variables()},
            tracking_uri=request.tracking_uri,
            registry_uri=request.registry_uri,
            log=log,
        )
    except ServeFailed as exc:
        raise TargetFailed(
            f"MLServer for {request.model_uri} in '{environment.name}' failed: {exc}"
            + (f"\nlast server output:\n{exc.log_tail}" if exc.log_tail else ""),
            hint="a failed download or environment build leaves the previous server running; a server that did "
            "not start has replaced it, and `mlci rollback` or a re-deploy restarts one",
        ) from exc
    return TargetResult(
        target="mlserver",
        url=environment.url or state.url,
        summary=f"MLServer serving {request.model_uri} at {state.url} (pid {state.pid}), "
        f"metrics at {extra['metrics-url']}",
        details={"pid": state.pid, "port": state.port, "server-url": state.url, "log": state.log, **extra},
    )


def _kubectl_context(kubectl: str, context: str | None, env: Mapping[str, str]) -> str | None:
    """The kubectl context to use, or None when kubectl has none (no cluster configured)."""
    args = [kubectl, "config", "current-context"] if not context else [kubectl, "config", "get-contexts", context]
    try:
        result = subprocess.run(
            args, env=dict(env), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return context or result.stdout.strip() or None


def _run_kubernetes(request: DeployRequest, *, base_env: Mapping[str, str], log: Log, warn: Log) -> TargetResult:
    from mlci.deploy.k8s import ManifestSpec, object_name, render_manifests
    from mlci.outputs import atomic_write

    environment = request.environment
    settings = environment.kubernetes
    spec = ManifestSpec(
        model_name=request.model_name,
        version=request.version,
        environment=environment.name,
        model_uri=request.model_uri,
        settings=settings,
        tracking_uri=request.tracking_uri,
        annotations=request.annotations,
    )
    manifests = render_manifests(spec)
    manifest_dir = request.out_dir / "k8s" / environment.name
    files = [atomic_write(manifest_dir / name, text) for name, text in manifests.items()]
    name = object_name(spec)
    details: dict[str, Any] = {"manifests": [str(path) for path in files], "name": name, "applied": False}
    mode = settings["apply"]
    if mode == "never":
        return TargetResult("kubernetes", environment.url, f"wrote {len(files)} manifests to {manifest_dir}", details)

    kubectl = shutil.which(settings["kubectl"], path=base_env.get("PATH", os.defpath))
    context = _kubectl_context(kubectl, settings.get("context"), base_env) if kubectl else None
    if context is None:
        why = f"`{settings['kubectl']}` is not on PATH" if not kubectl else "kubectl has no current context"
        if mode == "always":
            raise TargetFailed(
                f"cannot apply the manifests for '{environment.name}': {why}",
                hint="configure a kubeconfig (e.g. a GitLab agent's KUBECONFIG) or set kubernetes.apply: auto",
            )
        warn(f"{why}: wrote the manifests to {manifest_dir} as artifacts instead of applying them")
        return TargetResult(
            "kubernetes", environment.url, f"not applied ({why}); manifests in {manifest_dir}", details
        )

    base = [kubectl, "--context", context]
    apply = [*base, "apply", *[arg for path in files for arg in ("-f", str(path))]]
    code, tail = _stream(apply, env=base_env, timeout=300, log=log)
    if code != 0:
        raise TargetFailed(
            f"kubectl apply for '{environment.name}' failed"
            + (f" with code {code}" if code is not None else " (timed out)")
            + (f":\n{tail}" if tail else "")
        )
    details["applied"] = True
    details["context"] = context
    timeout = int(settings["rollout-timeout"])
    if timeout > 0:
        namespace = ["-n", settings["namespace"]] if settings.get("namespace") else []
        rollout = [*base, "rollout", "status", f"deployment/{name}", *namespace, f"--timeout={timeout}s"]
        code, tail = _stream(rollout, env=base_env, timeout=timeout + 30, log=log)
        if code != 0:
            raise TargetFailed(
                f"deployment/{name} in '{environment.name}' did not become ready within {timeout} s"
                + (f":\n{tail}" if tail else ""),
                hint=f"see `kubectl describe deployment/{name}`; the previous pods keep serving (maxUnavailable 0)",
            )
        details["rolled-out"] = True
    summary = f"applied {len(files)} manifests with context {context}"
    return TargetResult("kubernetes", environment.url, summary, details)
