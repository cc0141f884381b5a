"""Glue between the registry adapter and the pure gate: gather evidence, register on pass.

The registry is passed in (mlci.adapters.mlflow.Registry or anything with
the same methods), so this module holds no connection of its own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlci.adapters.mlflow import SOURCE_RUN_TAG, VALIDATED_TAG, VersionInfo
from mlci.errors import ExternalServiceError
from mlci.gate.core import GateResult, ModelEvidence
from mlci.gate.measure import load_sample, measure_model
from mlci.gate.policy import Policy

CANDIDATE_MARKER = "candidate"


@dataclass(frozen=True)
class Evidence:
    candidate: ModelEvidence
    champion: ModelEvidence | None
    champion_version: VersionInfo | None
    budget_artifacts: dict | None = None  # gate.budget-artifact optimized: what was measured, and why


def optimized_artifact(run_tags: dict[str, str]) -> tuple[str | None, str]:
    """(artifact path of the run's ONNX model or None, what the gate measures instead and why)."""
    from mlci.optimize.runner import PASSED, UNSUPPORTED, read_run_record

    found = read_run_record(run_tags)
    if found["status"] == PASSED and found["artifact-path"]:
        return found["artifact-path"], f"optimized model {found['artifact-path']!r} ({found['model-uri']})"
    if found["status"] == UNSUPPORTED:
        return None, f"original model: mlci optimize could not export it ({found['reason'] or 'unsupported'})"
    if found["status"]:
        return None, f"no optimized model: mlci optimize ended {found['status']}"
    return None, "no optimized model: mlci optimize did not run for this run"


def gather_evidence(registry, policy: Policy, *, model: str, run_id: str, artifact_path: str,
                    where: Callable[[tuple], str], say: Callable[[str], None] | None = None) -> Evidence:
    """Candidate metrics (+ measured budgets) and the champion's, from the registry; `say` hears long steps."""
    candidate_metrics = registry.run_metrics(run_id)
    champion_version = registry.get_marker(model, policy.champion_marker)
    champion_metrics: dict[str, float] = {}
    if champion_version is not None and champion_version.run_id:
        champion_metrics = registry.run_metrics(champion_version.run_id)

    candidate = ModelEvidence(metrics=candidate_metrics, run_id=run_id)
    champion = None
    if champion_version is not None:
        champion = ModelEvidence(metrics=champion_metrics, run_id=champion_version.run_id,
                                 version=champion_version.version)
    if not policy.budgets_needed:
        return Evidence(candidate, champion, champion_version)

    sample = load_sample(policy.latency, where=where)  # config problems surface before any download
    artifacts = None
    candidate_path = artifact_path
    if policy.budget_artifact == "optimized":
        optimized, what = optimized_artifact(registry.run_tags(run_id))
        artifacts = {"requested": "optimized", "candidate": what}
        if optimized:
            candidate_path = optimized
        elif not what.startswith("original"):
            # Asked for the optimized model and there is none: the budgets are not measured, so they fail.
            errors = {budget: f"{what} (gate.budget-artifact: optimized)" for budget in policy.budgets_needed}
            candidate = ModelEvidence(metrics=candidate_metrics, budget_errors=errors, run_id=run_id)
            return Evidence(candidate, champion, champion_version, artifacts)
    with tempfile.TemporaryDirectory(prefix="mlci-gate-") as tmp:
        candidate_dir = registry.download_run_artifacts(run_id, candidate_path, Path(tmp) / "candidate")
        measured, sample = measure_model(candidate_dir, policy.budgets_needed, policy.latency, sample,
                                         say=say, label="candidate")
        candidate = ModelEvidence(metrics=candidate_metrics, budgets=measured.budgets,
                                  budget_errors=measured.errors, run_id=run_id)
        wanted = policy.champion_budgets_needed
        if champion_version is not None and wanted:
            try:
                champion_optimized = None
                if artifacts is not None and champion_version.run_id:
                    champion_optimized, champion_what = optimized_artifact(champion_version.tags)
                    artifacts["champion"] = champion_what if champion_optimized else (
                        f"original model (version {champion_version.version} has no optimized model)")
                if champion_optimized:
                    champion_dir = registry.download_run_artifacts(champion_version.run_id, champion_optimized,
                                                                   Path(tmp) / "champion")
                else:
                    champion_dir = registry.download_version_artifacts(model, champion_version.version,
                                                                       Path(tmp) / "champion")
                champion_measured, _ = measure_model(champion_dir, wanted, policy.latency, sample,
                                                     say=say, label=f"champion (version {champion_version.version})")
            except ExternalServiceError as exc:
                champion_measured = None
                errors = {budget: f"champion model could not be downloaded: {exc.message}" for budget in wanted}
            champion = ModelEvidence(
                metrics=champion_metrics,
                budgets=champion_measured.budgets if champion_measured else {},
                budget_errors=champion_measured.errors if champion_measured else errors,
                run_id=champion_version.run_id,
                version=champion_version.version,
            )
    return Evidence(candidate, champion, champion_version, artifacts)


def gate_tags(result: GateResult, champion: VersionInfo | None) -> dict[str, str]:
    return {
        "mlci.gate.status": result.status,
        "mlci.gate.summary": result.summary(),
        "mlci.gate.champion": champion.version if champion else "none",
        "mlci.gate.cold_start": str(result.cold_start).lower(),
        "mlci.gate.warnings": str(len(result.warnings)),
    }


def register_passed(registry, result: GateResult, *, model: str, run_id: str, artifact_path: str,
                    champion: VersionInfo | None) -> tuple[VersionInfo, bool, str | None]:
    """Register the blessed run, mark it validated and move `candidate` to it.

    A retried gate job finds the version it registered before (same source run,
    already validated) and reuses it instead of registering a duplicate.
    Returns (version, reused, previous candidate version).
    """
    tags = gate_tags(result, champion)
    reused = next((v for v in registry.latest_versions(model)
                   if v.tags.get(SOURCE_RUN_TAG) == run_id and v.validated), None)
    if reused is None:
        version = registry.register(model, run_id, artifact_path, tags=tags)
    else:
        version = reused
        for key, value in tags.items():
            registry.set_version_tag(model, version.version, key, value)
    # Validated last: a job killed halfway never leaves a half-tagged "validated" version.
    registry.set_version_tag(model, version.version, VALIDATED_TAG, "true")
    previous = registry.move_marker(model, CANDIDATE_MARKER, version.version,
                                    reason=f"gate passed: {result.summary()}")
    return registry.get_version(model, version.version), reused is not None, previous
