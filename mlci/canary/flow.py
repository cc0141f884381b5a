"""Canary and A/B experiments end to end: registry state -> servers -> router -> analysis -> promotion.

The experiment lives in the registry, so every job of a pipeline (and the
next pipeline) sees the same one: the new version carries the state as the
version tag `mlci.canary.<environment>` (design, looks taken, decision), and
the marker `<environment>-canary` points at it (each move audited by the
registry adapter). Starting, promoting and aborting add audit records like
deploys and rollbacks do. Promotion is the normal deploy of the new version
to the environment; only the router is canary-specific.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlci.canary import decide
from mlci.canary.outcomes import Arm, OutcomeReader
from mlci.canary.routers import Upstream, canary_spec, render_httproute, render_kserve, render_nginx
from mlci.canary.settings import DEFAULT_BASELINE, CanarySettings
from mlci.deploy import promotion
from mlci.errors import CheckFailed, ExternalServiceError, UsageError

STATE_TAG = "mlci.canary."
START, PROMOTE, ABORT = "canary-start", "canary-promote", "canary-abort"


class CanaryRefused(CheckFailed):
    """The experiment cannot start or move (exit 1); nothing changed."""


def marker(environment: str) -> str:
    return f"{environment}-canary"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# -- registry state --------------------------------------------------------------------------------------------


def load_state(registry, model: str, environment: str) -> tuple[str | None, dict[str, Any] | None]:
    """(new version, experiment state) of the environment's latest experiment, or (None, None)."""
    holder = registry.get_marker(model, marker(environment))
    if holder is None:
        return None, None
    text = holder.tags.get(STATE_TAG + environment)
    if not text:
        return holder.version, None
    return holder.version, json.loads(text)


def save_state(registry, model: str, version: str, state: dict[str, Any]) -> None:
    registry.set_version_tag(model, version, STATE_TAG + state["environment"],
                             json.dumps(state, sort_keys=True, separators=(",", ":")))


def running(state: dict[str, Any] | None) -> bool:
    return bool(state) and not state.get("finished")


# -- routers -----------------------------------------------------------------------------------------------------


def _run_command(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExternalServiceError("nginx", " ".join(command), f"{what} could not run: {exc}",
                                   hint="check deploy.canary.router.test-command / reload-command") from None
    if done.returncode != 0:
        raise ExternalServiceError("nginx", " ".join(command), f"{what} failed: {(done.stderr or done.stdout)[-1500:]}",
                                   hint="the previous configuration was restored and keeps serving")


def apply_nginx(settings: CanarySettings, text: str, log) -> Path:
    """Write the include, check the whole configuration, reload; a rejected file is replaced by the old one."""
    from mlci.outputs import atomic_write

    path = settings.nginx_config_path()
    previous = path.read_text(encoding="utf-8") if path.exists() else None
    atomic_write(path, text)
    router = settings.router
    try:
        _run_command(list(router["test-command"]), "the configuration test")
    except ExternalServiceError:
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, previous)
        raise
    _run_command(list(router["reload-command"]), "the reload")
    log(f"nginx: rendered {path} and reloaded")
    return path


def _server_address(settings: CanarySettings, environment: str) -> Upstream:
    from mlci.deploy.serve import is_running, read_state

    state = read_state(settings.deploy.state_dir, environment)
    if state is None or not is_running(state):
        raise CanaryRefused(f"no running server recorded for '{environment}' in {settings.deploy.state_dir}",
                            hint=f"deploy the environment first (`mlci deploy --to {settings.environment.name}`)")
    host = "127.0.0.1" if state.host in ("0.0.0.0", "") else state.host
    return Upstream(state.model_version, f"{host}:{state.port}")


def _kubectl_apply(settings: CanarySettings, files: list[Path], runtime, *, delete: bool = False) -> bool:
    """Apply (or delete) rendered manifests like the kubernetes target does; False when left as artifacts."""
    import os

    from mlci.deploy.targets import _kubectl_context

    kube = settings.environment.kubernetes
    if kube["apply"] == "never":
        return False
    kubectl = shutil.which(kube["kubectl"], path=runtime.base_env.get("PATH", os.defpath))
    context = _kubectl_context(kubectl, kube.get("context"), runtime.base_env) if kubectl else None
    if context is None:
        why = f"`{kube['kubectl']}` is not on PATH" if not kubectl else "kubectl has no current context"
        if kube["apply"] == "always":
            raise ExternalServiceError("Kubernetes", "kubectl", f"cannot apply the canary manifests: {why}",
                                       hint="configure a kubeconfig or set kubernetes.apply: auto")
        runtime.warn(f"{why}: the router manifests are artifacts, not applied")
        return False
    verb = ["delete", "--ignore-not-found"] if delete else ["apply"]
    command = [kubectl, "--context", context, *verb, *[arg for path in files for arg in ("-f", str(path))]]
    _run_command(command, f"kubectl {verb[0]}")
    return True


def _manifest_spec(settings: CanarySettings, model: str, version: str, runtime):
    from mlci.deploy.k8s import ManifestSpec

    return ManifestSpec(model_name=model, version=version, environment=settings.environment.name,
                        model_uri=f"models:/{model}/{version}", settings=settings.environment.kubernetes,
                        tracking_uri=runtime.tracking_uri, annotations=runtime.annotations)


def _write(out_dir: Path, name: str, text: str) -> Path:
    from mlci.outputs import atomic_write

    return atomic_write(Path(out_dir) / "canary" / name, text)


def route(settings: CanarySettings, *, model: str, stable: str, canary: str | None, percent: float,
          runtime) -> dict[str, Any]:
    """Point the environment's router at `stable` plus `canary` at `percent`% (None or 0: stable only)."""
    kind = settings.router["type"]
    header = settings.router["header"]
    env = settings.environment.name
    if kind == "nginx":
        stable_upstream = _server_address(settings, env)
        canary_upstream = _server_address(settings, settings.canary_environment) if canary and percent else None
        text = render_nginx(environment=env, listen=settings.router["listen"], header=header,
                            stable=stable_upstream, canary=canary_upstream, percent=percent if canary else 0)
        path = apply_nginx(settings, text, runtime.log)
        return {"router": "nginx", "config": str(path), "listen": settings.router["listen"], "percent": percent}
    spec = _manifest_spec(settings, model, canary or stable, runtime)
    if kind == "kserve":
        text = render_kserve(spec, percent if canary else None)
        path = _write(runtime.out_dir, f"{env}-inferenceservice.yaml", text)
        applied = _kubectl_apply(settings, [path], runtime)
        return {"router": "kserve", "manifest": str(path), "applied": applied, "percent": percent}
    stable_spec = _manifest_spec(settings, model, stable, runtime)
    canary_objects = canary_spec(spec) if canary else None
    text = render_httproute(stable=stable_spec, canary=canary_objects, percent=percent, header=header,
                            gateway=settings.router["gateway"], hostnames=settings.router["hostnames"],
                            stable_version=stable)
    path = _write(runtime.out_dir, f"{env}-httproute.yaml", text)
    applied = _kubectl_apply(settings, [path], runtime)
    return {"router": "gateway-api", "manifest": str(path), "applied": applied, "percent": percent}


# -- the new version's own server ----------------------------------------------------------------------------------


def _canary_environment(settings: CanarySettings):
    env = settings.environment
    name = settings.canary_environment
    fresh_ports = {"port": 0, "metrics-port": 0}
    kubernetes = env.kubernetes
    if env.target == "kubernetes":
        from mlci.deploy.k8s import ManifestSpec, object_name

        base = object_name(ManifestSpec("m", "1", env.name, "", env.kubernetes))
        from mlci.deploy.k8s import dns_name

        kubernetes = {**env.kubernetes, "name": dns_name(f"{base}-canary")}
    return dataclasses.replace(env, name=name, url=None, serve={**env.serve, "port": 0},
                               mlserver={**env.mlserver, **fresh_ports}, kubernetes=kubernetes)


def start_canary_server(settings: CanarySettings, *, model: str, version: str, registry, runtime) -> dict[str, Any]:
    """Serve the new version beside the environment's (KServe does it inside the InferenceService)."""
    from mlci.deploy.artifact import served_artifact
    from mlci.deploy.flow import _run

    if settings.router["type"] == "kserve":
        return {}
    env = _canary_environment(settings)
    info = registry.get_version(model, version)
    served = served_artifact(env.artifact, model, version, info.tags or {})
    result = _run(env, model, version, runtime, settings.deploy, served)
    return {"summary": result.summary, "url": result.url, **{k: v for k, v in result.details.items()
                                                             if k in ("server-url", "metrics-url", "pid")}}


def stop_canary_server(settings: CanarySettings, runtime) -> None:
    name = settings.canary_environment
    if settings.router["type"] == "nginx":
        from mlci.deploy.mlserver import remove_scrape_target
        from mlci.deploy.serve import read_state, state_path, stop_server

        state = read_state(settings.deploy.state_dir, name)
        if state is not None:
            stop_server(state)
            state_path(settings.deploy.state_dir, name).unlink(missing_ok=True)
        remove_scrape_target(settings.deploy.state_dir, name)
    elif settings.router["type"] == "gateway-api":
        manifests = sorted((Path(runtime.out_dir) / "k8s" / name).glob("*.yaml"))
        if manifests:
            _kubectl_apply(settings, manifests, runtime, delete=True)


# -- the experiment ------------------------------------------------------------------------------------------------


def plan_metrics(settings: CanarySettings, reader: OutcomeReader | None, stable: Arm, warn) -> dict[str, dict]:
    metrics = {}
    for metric in settings.metrics:
        measured, requests = (None, 0)
        if reader is not None:
            measured, requests = reader.baseline(metric, stable, settings.baseline_window)
        if measured is not None and requests >= settings.min_baseline_requests:
            baseline, source = measured, f"measured: stable version {stable.version}, {requests} requests"
        else:
            baseline = metric.baseline if metric.baseline is not None else DEFAULT_BASELINE
            source = "configured" if metric.baseline is not None else "default"
            warn(f"{metric.name}: {requests} stable requests in the baseline window (fewer than "
                 f"{settings.min_baseline_requests}); planning with the {source} baseline rate {baseline:g}")
        metrics[metric.name] = {**metric.to_state(), "baseline": baseline, "baseline-source": source}
    return metrics


def choose_canary_version(registry, settings: CanarySettings, *, model: str, flag: str | None,
                          env_value: str | None) -> tuple[str, str]:
    names = settings.deploy.names
    env = settings.environment.name
    source = promotion.source_marker(names, env)
    holder = registry.get_marker(model, source)
    version, origin = promotion.choose_version(flag=flag, env_value=env_value, marker=source,
                                               marker_holder=holder.version if holder else None)
    info = registry.get_version(model, version)
    current = registry.get_marker(model, env)
    plan = promotion.plan_deploy(names, env, promotion.VersionState.from_tags(info.version, info.tags, info.aliases),
                                 current_holder=current.version if current else None,
                                 gate_holder=holder.version if holder else None)
    if plan.redeploy:
        raise CanaryRefused(f"version {version} already holds '{env}': there is nothing to compare it with")
    if not current:
        raise CanaryRefused(f"no version holds '{env}' yet: a canary needs a stable version to compare with",
                            hint=f"deploy the first version with `mlci deploy --to {env}`")
    return version, origin


def start(registry, settings: CanarySettings, *, model: str, version: str, percent: float, reader, runtime,
          started: datetime | None = None) -> dict[str, Any]:
    env = settings.environment.name
    _, existing = load_state(registry, model, env)
    if running(existing):
        raise CanaryRefused(
            f"a {existing['mode']} of version {existing['canary']} against {existing['stable']} is already "
            f"running in '{env}' (started {existing['started-at']})",
            hint="finish it first: `mlci canary promote` or `mlci canary abort`")
    stable = registry.get_marker(model, env).version
    metrics = plan_metrics(settings, reader, Arm(stable, env), runtime.warn)
    state = decide.new_state(mode=settings.mode, environment=env, stable=stable, canary=version, percent=percent,
                             settings=settings.design_settings, metrics=metrics, started_at=started or now_utc())
    server = start_canary_server(settings, model=model, version=version, registry=registry, runtime=runtime)
    router = route(settings, model=model, stable=stable, canary=version, percent=percent, runtime=runtime)
    if started is None:  # the clock starts when traffic is split; the counters are read from then on
        state["started-at"] = now_utc().isoformat(timespec="seconds")
    state["router"] = router
    save_state(registry, model, version, state)
    registry.move_marker(model, marker(env), version, reason=f"canary start in {env} at {percent:g}%")
    registry.append_audit(model, version, {
        "action": START, "environment": env, "from-version": stable, "to-version": version, "percent": percent,
        "mode": settings.mode, "router": router["router"]})
    return {"state": state, "server": server, "router": router}


def require_running(registry, model: str, env: str) -> tuple[str, dict[str, Any]]:
    version, state = load_state(registry, model, env)
    if state is None:
        raise UsageError(f"no canary or A/B experiment has run in '{env}'",
                         hint=f"start one with `mlci canary start --env {env}`")
    return version, state


def finish(registry, settings: CanarySettings, state: dict[str, Any], *, model: str, action: str, reason: str,
           runtime, deploy_new) -> dict[str, Any]:
    """Promote (the normal deploy of the new version, then all traffic to it) or abort (all traffic back)."""
    env = settings.environment.name
    canary, stable = state["canary"], state["stable"]
    result: dict[str, Any] = {}
    if action == PROMOTE:
        outcome = deploy_new(canary)
        result["deploy"] = outcome.to_json()
        router = route(settings, model=model, stable=canary, canary=None, percent=0, runtime=runtime)
    else:
        router = route(settings, model=model, stable=stable, canary=canary if settings.router["type"] == "kserve"
                       else None, percent=0, runtime=runtime)
    stop_canary_server(settings, runtime)
    state["finished"] = {"action": action, "at": now_utc().isoformat(timespec="seconds"), "reason": reason}
    save_state(registry, model, canary, state)
    registry.append_audit(model, canary, {
        "action": action, "environment": env, "from-version": stable, "to-version": canary if action == PROMOTE
        else stable, "reason": reason, "decision": (state.get("decision") or {}).get("decision")})
    result["router"] = router
    return result
