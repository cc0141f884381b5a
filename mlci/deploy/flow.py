"""Deploy and rollback, end to end: registry state -> plan -> target -> markers -> audit.

The order is the point: the target runs first, and markers move only after it
reported success. A failed target leaves every marker where it was and is
recorded as a failed attempt, so nothing is ever half-promoted.

Talks to the registry through the adapter's interface (mlci.adapters.mlflow.Registry);
the commands build the registry and write the artifacts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlci.deploy import promotion
from mlci.deploy.artifact import SERVED_TAG_PREFIX, Served, served_artifact
from mlci.deploy.settings import DeploySettings, Environment
from mlci.deploy.targets import DeployRequest, TargetFailed, TargetResult, run_target
from mlci.errors import ExternalServiceError, UsageError


@dataclass
class Outcome:
    """What happened, for the deploy-ENV.json / rollback-ENV.json log artifact."""

    action: str  # deploy | rollback
    status: str  # deployed | redeployed | rolled-back | failed | refused
    model: str
    environment: str
    target: str
    from_version: str | None = None
    to_version: str | None = None
    url: str | None = None
    markers_moved: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] | None = None
    error: str | None = None

    @property
    def model_uri(self) -> str | None:
        return f"models:/{self.model}/{self.to_version}" if self.to_version else None

    def to_json(self) -> dict[str, Any]:
        audit = self.audit or {}
        return {
            "action": self.action,
            "status": self.status,
            "model": self.model,
            "environment": self.environment,
            "target": self.target,
            "from-version": self.from_version,
            "to-version": self.to_version,
            "model-uri": self.model_uri,
            "url": self.url,
            "markers-moved": self.markers_moved,
            # who/when/where straight from the audit record stored on the version
            **{key: audit.get(key) for key in ("who", "when", "pipeline", "pipeline-url", "job", "job-url", "commit")},
            **({"reason": audit.get("reason")} if self.action == promotion.ROLLBACK else {}),
            "details": self.details,
            "audit": audit or None,
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True)
class TargetRuntime:
    """Everything a target needs beyond the version: where files go, which environment it inherits."""

    tracking_uri: str | None
    registry_uri: str | None
    out_dir: Any
    base_env: Mapping[str, str]
    annotations: Mapping[str, str]
    log: Callable[[str], None]
    warn: Callable[[str], None]


def _environment(settings: DeploySettings, name: str) -> Environment:
    environment = settings.get(name)
    if environment is None:
        raise UsageError(
            f"unknown environment '{name}'; configured environments: {', '.join(settings.names)}",
            hint="environments come from deploy.environments in mlci.yml (default: staging, production)",
        )
    return environment


def _existing_version(registry, model: str, version: str):
    try:
        return registry.get_version(model, version)
    except ExternalServiceError as exc:
        if exc.status == 404:
            raise promotion.PromotionRefused(
                f"refusing to deploy: model '{model}' has no version {version} in the registry at {exc.url}",
                hint="check the version number and mlflow.tracking-uri / registry-uri",
            ) from exc
        raise


def _run(environment: Environment, model: str, version: str, runtime: TargetRuntime, settings,
         served: Served | None = None) -> TargetResult:
    request = DeployRequest(
        artifact=served.artifact if served else "original",
        served_uri=served.model_uri if served and served.artifact == "optimized" else None,
        model_name=model,
        version=version,
        environment=environment,
        tracking_uri=runtime.tracking_uri,
        registry_uri=runtime.registry_uri,
        out_dir=runtime.out_dir,
        state_dir=settings.state_dir,
        annotations=runtime.annotations,
    )
    return run_target(request, base_env=runtime.base_env, log=runtime.log, warn=runtime.warn)


def _audit(registry, model: str, version: str, record: dict[str, Any]) -> dict[str, Any]:
    """Append `record` to the version and return it as stored (enriched with who/when/pipeline/job/commit)."""
    registry.append_audit(model, version, record)
    trail = registry.audit_trail(model, version)
    return trail[-1] if trail else record


def _move_markers(registry, model: str, version: str, markers, held, reason: str) -> list[str]:
    moved = []
    for marker in markers:
        if marker not in held:
            registry.move_marker(model, marker, version, reason=reason)
            moved.append(marker)
    return moved


def deploy(
    registry,
    settings: DeploySettings,
    *,
    model: str,
    to: str,
    version_flag: str | None,
    version_env: str | None,
    runtime: TargetRuntime,
) -> Outcome:
    """Promote one version to `to`. Raises PromotionRefused before anything runs; returns a failed
    Outcome (markers untouched) when the target fails."""
    environment = _environment(settings, to)
    names = settings.names
    source_marker = promotion.source_marker(names, to)
    source_holder = registry.get_marker(model, source_marker)
    version, origin = promotion.choose_version(
        flag=version_flag,
        env_value=version_env,
        marker=source_marker,
        marker_holder=source_holder.version if source_holder else None,
    )
    info = _existing_version(registry, model, version)
    current = registry.get_marker(model, to)
    plan = promotion.plan_deploy(
        names,
        to,
        promotion.VersionState.from_tags(info.version, info.tags, info.aliases),
        current_holder=current.version if current else None,
        gate_holder=source_holder.version if source_holder else None,
    )
    outcome = Outcome(
        action=promotion.DEPLOY,
        status="failed",
        model=model,
        environment=to,
        target=environment.target,
        from_version=plan.from_version,
        to_version=version,
        details={"version-source": origin, "redeploy": plan.redeploy},
    )
    return _run_then_move_markers(
        registry, settings, runtime, environment, outcome,
        version=version,
        markers=plan.markers,
        aliases=info.aliases,
        version_tags=info.tags,
        action=promotion.DEPLOY,
        failed_action="deploy-failed",
        status="redeployed" if plan.redeploy else "deployed",
        marker_reason=f"deploy to {to} ({environment.target})",
        failed_extra={},
        success_extra={"version-source": origin, "redeploy": plan.redeploy},
    )


def rollback(
    registry,
    settings: DeploySettings,
    *,
    model: str,
    env: str,
    to: str | None,
    reason: str,
    runtime: TargetRuntime,
) -> Outcome:
    """Re-point `env` to an earlier holder (the audit trail's, or `to`), re-running the target first."""
    environment = _environment(settings, env)
    current = registry.get_marker(model, env)
    history = promotion.environment_history(registry.audit_trail(model), env)
    plan = promotion.plan_rollback(
        settings.names, env, current_holder=current.version if current else None, history=history, requested=to
    )
    info = _existing_version(registry, model, plan.to_version)
    outcome = Outcome(
        action=promotion.ROLLBACK,
        status="failed",
        model=model,
        environment=env,
        target=environment.target,
        from_version=plan.from_version,
        to_version=plan.to_version,
        details={"chosen-by": plan.chosen_by},
    )
    return _run_then_move_markers(
        registry, settings, runtime, environment, outcome,
        version=plan.to_version,
        markers=plan.markers,
        aliases=info.aliases,
        version_tags=info.tags,
        action=promotion.ROLLBACK,
        failed_action="rollback-failed",
        status="rolled-back",
        marker_reason=f"rollback of {env}: {reason}",
        failed_extra={"reason": reason},
        success_extra={"reason": reason, "chosen-by": plan.chosen_by},
    )


def _run_then_move_markers(
    registry,
    settings: DeploySettings,
    runtime: TargetRuntime,
    environment,
    outcome: Outcome,
    *,
    version: str,
    markers,
    aliases,
    version_tags,
    action: str,
    failed_action: str,
    status: str,
    marker_reason: str,
    failed_extra: dict,
    success_extra: dict,
) -> Outcome:
    """Deploy and rollback alike: run the target first; only when it succeeded move the markers.

    Either way an audit record lands on the version, so a failed attempt is on record too.
    """
    served = served_artifact(environment.artifact, outcome.model, version, version_tags or {})
    if served.note:
        runtime.warn(f"'{outcome.environment}' asks for artifact: optimized, but {served.note}")
    common = {
        "environment": outcome.environment,
        "from-version": outcome.from_version,
        "to-version": version,
        "target": environment.target,
        "artifact": served.artifact,
        "served-uri": served.model_uri,
    }
    outcome.details.update({"artifact": served.artifact, "served-uri": served.model_uri,
                            **({"artifact-note": served.note} if served.note else {})})
    try:
        result = _run(environment, outcome.model, version, runtime, settings, served)
    except TargetFailed as exc:
        outcome.error = exc.message
        outcome.audit = _audit(registry, outcome.model, version, {
            "action": failed_action, **common, **failed_extra, "error": exc.message[:2000],
        })
        raise DeployFailed(outcome, exc) from exc
    outcome.url = result.url
    outcome.details.update({"target-summary": result.summary, "target-result": result.details})
    # The version records what it is served as here; the marker says whether it still is.
    registry.set_version_tag(outcome.model, version, SERVED_TAG_PREFIX + outcome.environment, served.artifact)
    outcome.markers_moved = _move_markers(registry, outcome.model, version, markers, aliases, reason=marker_reason)
    outcome.status = status
    outcome.audit = _audit(registry, outcome.model, version, {
        "action": action, **common, "url": result.url, "markers": outcome.markers_moved, **success_extra,
    })
    return outcome


class DeployFailed(TargetFailed):
    """The target failed; carries the Outcome so the command can still write the log artifact."""

    def __init__(self, outcome: Outcome, cause: TargetFailed):
        super().__init__(cause.message, hint=cause.hint)
        self.outcome = outcome
