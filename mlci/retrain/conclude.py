"""How a retrain pipeline ends: skipped, blocked, or passed and then registered/promoted/proposed.

The verdict logic and every text (summary, MR title, branch, description) are
pure. The one function with side effects, `conclude_passed`, receives the
registry and the promote / merge-request actions as arguments, so tests and
the command wire in whatever they need.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlci.errors import UsageError

OUTCOME_EXIT_CODES = {"skipped": 0, "registered": 0, "promoted": 0, "merge-request": 0, "blocked": 1, "error": 3}
MAX_DESCRIPTION_CHARS = 900_000  # GitLab caps MR descriptions at 1,048,576 characters
MAX_TAG_CHARS = 500


@dataclass(frozen=True)
class GateVerdict:
    status: str        # "passed" | "failed"
    model: str
    version: str
    run_id: str = ""


def read_gate_verdict(env: Mapping[str, str], default_model: str) -> GateVerdict:
    """The gate job's dotenv (MLCI_GATE, MLCI_MODEL_NAME, MLCI_MODEL_VERSION, MLCI_RUN_ID)."""
    status = env.get("MLCI_GATE", "").strip().lower()
    hint = "mlci retrain conclude runs after `mlci gate` in a job with `needs: [mlci-gate]`, which passes gate.env"
    if not status:
        raise UsageError("MLCI_GATE is not set, so there is no gate verdict to conclude", hint=hint)
    if status not in ("passed", "failed"):
        raise UsageError(f"MLCI_GATE={env.get('MLCI_GATE')!r}: expected 'passed' or 'failed'", hint=hint)
    model = env.get("MLCI_MODEL_NAME", "").strip() or default_model
    version = env.get("MLCI_MODEL_VERSION", "").strip()
    if not model:
        raise UsageError("no model name: MLCI_MODEL_NAME is not set and model.name is not configured", hint=hint)
    if status == "passed" and not version:
        raise UsageError("MLCI_GATE=passed but MLCI_MODEL_VERSION is not set", hint=hint)
    return GateVerdict(status=status, model=model, version=version, run_id=env.get("MLCI_RUN_ID", "").strip())


def split_reasons(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(";") if part.strip()]


@dataclass
class Conclusion:
    outcome: str                      # skipped | blocked | registered | promoted | merge-request | error
    message: str
    model: str = ""
    model_version: str = ""
    run_id: str = ""
    gate: str | None = None
    on_pass: str = ""
    reasons: list[str] = field(default_factory=list)
    action: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def retrained(self) -> bool:
        return self.gate is not None

    @property
    def exit_code(self) -> int:
        return OUTCOME_EXIT_CODES[self.outcome]

    def summary(self, ci=None, now: datetime | None = None) -> dict[str, Any]:
        """retrain-summary.json (write_json adds "version": 1)."""
        body: dict[str, Any] = {
            "outcome": self.outcome,
            "retrained": self.retrained,
            "message": self.message,
            "model": self.model,
            "model_version": self.model_version or None,
            "run_id": self.run_id or None,
            "gate": self.gate,
            "on_pass": self.on_pass or None,
            "reasons": list(self.reasons),
            "action": dict(self.action),
            "warnings": list(self.warnings),
            "finished_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        }
        if ci is not None:
            body["pipeline"] = {
                k: v
                for k, v in {
                    "id": ci.pipeline_id, "url": ci.pipeline_url, "job_url": ci.job_url,
                    "commit": ci.commit_sha, "ref": ci.commit_ref,
                }.items()
                if v
            }
        return body


def conclude_skipped(model: str, reasons: list[str]) -> Conclusion:
    why = "; ".join(reasons) or "no reason recorded (MLCI_RETRAIN_REASON is not set)"
    return Conclusion(outcome="skipped", message=why, model=model, reasons=reasons)


def conclude_blocked(verdict: GateVerdict, reasons: list[str], on_pass: str) -> Conclusion:
    shown = f"v{verdict.version}" if verdict.version else f"(run {verdict.run_id or 'unknown'})"
    shown = f"{verdict.model} {shown}"
    return Conclusion(
        outcome="blocked",
        message=f"retrained {shown} was blocked by the gate; the champion stays in place",
        model=verdict.model,
        model_version=verdict.version,
        run_id=verdict.run_id,
        gate="failed",
        on_pass=on_pass,
        reasons=reasons,
    )


_UNSAFE_REF = re.compile(r"[^A-Za-z0-9._-]+")


def branch_name(prefix: str, model: str) -> str:
    """A git-ref-safe source branch for the model's retrain MR, e.g. mlci/retrain/churn-model."""
    parts = []
    for raw in model.split("/"):
        part = re.sub(r"\.{2,}", "-", _UNSAFE_REF.sub("-", raw)).strip(".-")
        if part.endswith(".lock"):
            part = part[: -len(".lock")] + "-lock"
        if part:
            parts.append(part)
    slug = "/".join(parts) or "model"
    return f"{prefix}{slug}" if prefix.endswith("/") or not prefix else f"{prefix}/{slug}"


_MD_IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)(\))")


def local_images(markdown: str) -> list[str]:
    """Relative image paths in a markdown text (e.g. report-plots/roc.png), in order, each once."""
    found: list[str] = []
    for match in _MD_IMAGE.finditer(markdown):
        target = match.group(2)
        if "://" in target or target.startswith(("/", "#", "data:")) or ".." in target.split("/"):
            continue
        if target not in found:
            found.append(target)
    return found


def replace_images(markdown: str, urls: Mapping[str, str]) -> str:
    """Point relative images at their uploaded copies; anything not in `urls` stays as it was."""
    return _MD_IMAGE.sub(lambda m: f"{m.group(1)}{urls.get(m.group(2), m.group(2))}{m.group(3)}", markdown)


def merge_request_title(model: str, version: str) -> str:
    return f"Retrained model {model} v{version}"


def merge_request_description(
    *,
    model: str,
    version: str,
    run_id: str,
    reasons: list[str],
    report_md: str | None,
    gate_md: str | None,
    ci=None,
) -> str:
    """The MR description: the model report when the report job wrote one, else a generated summary."""
    if report_md and report_md.strip():
        text = report_md
    else:
        lines = [
            f"## Retrained model {model} v{version}",
            "",
            "A scheduled retraining pipeline trained a new version and it passed the gate.",
            "",
            f"- **Why it retrained:** {'; '.join(reasons) or 'not recorded'}",
            f"- **Version:** {model} v{version}" + (f" (MLflow run `{run_id}`)" if run_id else ""),
        ]
        if ci is not None and ci.pipeline_url:
            lines.append(f"- **Pipeline:** {ci.pipeline_url}")
        lines += [
            "",
            f"Review it here; deploy it with the manual deploy jobs or `mlci deploy --to <env> --version {version}`.",
        ]
        if gate_md and gate_md.strip():
            lines += ["", "### Gate", "", gate_md.strip()]
        text = "\n".join(lines) + "\n"
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[:MAX_DESCRIPTION_CHARS] + "\n\n_(truncated; the full report is in the pipeline artifacts)_\n"
    return text


def conclude_passed(
    verdict: GateVerdict,
    reasons: list[str],
    on_pass: str,
    *,
    registry,
    promote: Callable[[str, str], dict[str, Any]],
    open_merge_request: Callable[[str, str], dict[str, Any]],
) -> Conclusion:
    """Act on a version that passed: register-only, promote-staging or merge-request.

    `promote(model, version)` and `open_merge_request(model, version)` return
    what they did, for the summary. Errors propagate (ExternalServiceError -> exit 3).
    """
    model, version = verdict.model, verdict.version
    info = registry.get_version(model, version)
    warnings = []
    if info.tags.get("mlci.validated") != "true":
        warnings.append(f"{model} v{version} has no mlci.validated=true tag although MLCI_GATE=passed")

    if on_pass == "promote-staging":
        action = promote(model, version)
        where = action.get("environment", "the first environment")
        outcome, message = "promoted", f"promoted {model} v{version} to {where}; production stays manual"
    elif on_pass == "merge-request":
        action = open_merge_request(model, version)
        mr = action.get("merge_request", {})
        outcome = "merge-request"
        message = f"{mr.get('action', 'opened')} merge request !{mr.get('iid', '?')} for {model} v{version}"
        if mr.get("web_url"):
            message += f": {mr['web_url']}"
    else:
        action = {"registered": True}
        outcome, message = "registered", f"{model} v{version} is registered; nothing promoted (on-pass: register-only)"

    reason_text = "; ".join(reasons)[:MAX_TAG_CHARS]
    registry.set_version_tag(model, version, "mlci.retrain.outcome", outcome)
    if reason_text:
        registry.set_version_tag(model, version, "mlci.retrain.reason", reason_text)
    registry.append_audit(model, version, {"event": "retrain", "outcome": outcome, "on_pass": on_pass,
                                           "reason": reason_text})
    return Conclusion(
        outcome=outcome,
        message=message,
        model=model,
        model_version=version,
        run_id=verdict.run_id or info.run_id,
        gate="passed",
        on_pass=on_pass,
        reasons=reasons,
        action=action,
        warnings=warnings,
    )


def notification_text(conclusion: Conclusion) -> str:
    return f"mlci retrain {conclusion.model} {conclusion.outcome}: {conclusion.message}"
