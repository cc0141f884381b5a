"""ML-specific lint rules over the merged pipeline. Each returns findings; none prints.

The rules look at jobs after `extends` and `default:` are applied (what the
runner executes), and point at the line that set the value, or at the job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from mlci.lint.findings import Finding
from mlci.lint.resolve import Pipeline

GPU_TAG = re.compile(r"gpu|cuda|nvidia", re.IGNORECASE)
PRODUCTION = re.compile(r"^(prod|production|prd|live)$|^production[-_/]|[-_/]production$", re.IGNORECASE)
DEPLOY_NAME = re.compile(r"(deploy|release|promote|rollout|rollback|publish)", re.IGNORECASE)
PROD_NAME = re.compile(r"prod", re.IGNORECASE)
SCHEDULE_NAME = re.compile(r"retrain|nightly|schedul|cron|weekly|daily|hourly", re.IGNORECASE)
NON_DEPLOY_ACTIONS = {"stop", "verify", "access", "prepare"}
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")

# Known token shapes: (what it looks like, pattern). The value itself is never echoed.
TOKEN_SHAPES = [
    ("a GitLab token", re.compile(r"\bgl(pat|ptt|dt|rt|cbt|oas|ft|imt|agent|soat|wt|ffct)-[A-Za-z0-9_\-.]{16,}")),
    ("a GitHub token", re.compile(r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("an API secret key", re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
]
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL", re.IGNORECASE)


def _is_manual(job: dict) -> bool:
    """Does every way this job can enter a pipeline require a click?"""
    job_when = job.get("when", "on_success")
    rules = job.get("rules")
    if not rules:
        return job_when == "manual"
    entering = [rule for rule in rules if isinstance(rule, dict) and rule.get("when", job_when) != "never"]
    # A job no rule adds (e.g. a switched-off template feature) never runs, so nothing runs unasked.
    return all(rule.get("when", job_when) == "manual" for rule in entering)


def _environment(job: dict) -> tuple[str, str, str]:
    """(name, deployment tier, action) of the job's environment, empty strings when absent."""
    env = job.get("environment")
    if isinstance(env, str):
        return env, "", "start"
    if isinstance(env, dict):
        return str(env.get("name", "")), str(env.get("deployment_tier", "")), str(env.get("action", "start"))
    return "", "", ""


def _expand(text: str, job: dict, pipeline: Pipeline) -> str | None:
    """Expand $VAR from the job's and the global YAML variables; None when something stays unknown."""
    scopes = [job.get("variables") or {}, pipeline.data.get("variables") or {}]

    def value_of(name: str) -> str | None:
        for scope in scopes:
            if isinstance(scope, dict) and name in scope:
                value = scope[name]
                return str(value.get("value", "")) if isinstance(value, dict) else str(value)
        return None

    for _ in range(10):
        names = _VARIABLE.findall(text)
        if not names:
            return text
        for name in names:
            value = value_of(name)
            if value is None:
                return None
            text = re.sub(r"\$\{?" + re.escape(name) + r"\b\}?", lambda _m, v=value: v, text)
    return None


def _image_problem(image: str) -> str | None:
    reference = image.split("@", 1)
    if len(reference) == 2 and reference[1].startswith("sha256:"):
        return None
    last = reference[0].rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag, so it means :latest"
    if last.rsplit(":", 1)[1] == "latest":
        return "uses the :latest tag"
    return None


# -- the rules ---------------------------------------------------------------------------------------

def gpu_job_unbounded(pipeline: Pipeline) -> Iterator[Finding]:
    for name, job in pipeline.jobs.items():
        tags = job.get("tags") or []
        gpu = [t for t in tags if isinstance(t, str) and GPU_TAG.search(t)]
        if not gpu:
            continue
        missing = [key for key in ("timeout", "interruptible") if key not in job]
        if missing:
            yield Finding.make(
                "gpu-job-unbounded",
                f"job '{name}' runs on GPU runners (tags: {', '.join(gpu)}) without {' and '.join(missing)}: "
                "set `timeout:` so a hung run cannot hold the GPU for the runner's maximum, and "
                "`interruptible: true` so a newer pipeline frees it",
                pipeline.job_where(name, ("tags",)), job=name,
            )


def production_deploy_unguarded(pipeline: Pipeline) -> Iterator[Finding]:
    for name, job in pipeline.jobs.items():
        env_name, tier, action = _environment(job)
        if action in NON_DEPLOY_ACTIONS:
            continue
        by_environment = bool(PRODUCTION.search(env_name)) or tier == "production"
        by_name = bool(DEPLOY_NAME.search(name) and PROD_NAME.search(name))
        if not (by_environment or by_name) or "trigger" in job:
            continue
        missing = []
        if not _is_manual(job):
            missing.append("`when: manual` (on the job or every rule that adds it)")
        if not job.get("resource_group"):
            missing.append("`resource_group:` (two deploys could overlap)")
        if not env_name:
            missing.append("`environment:` (no deployment history, no protected-environment approval)")
        if missing:
            yield Finding.make(
                "production-deploy-unguarded",
                f"production deploy job '{name}' lacks " + "; ".join(missing),
                pipeline.job_where(name, ("environment",) if env_name else ()), job=name,
            )


def image_unpinned(pipeline: Pipeline) -> Iterator[Finding]:
    for name, job in pipeline.jobs.items():
        image = job.get("image")
        if isinstance(image, dict):
            image = image.get("name")
        if not isinstance(image, str) or not image:
            continue
        expanded = _expand(image, job, pipeline)
        if expanded is None:
            continue
        problem = _image_problem(expanded)
        if problem:
            shown = image if expanded == image else f"{image} (= {expanded})"
            yield Finding.make("image-unpinned", f"job '{name}' image {shown} {problem}; pin a version or a "
                               "@sha256 digest so a rerun trains with the same software",
                               pipeline.job_where(name, ("image",)), job=name)


def _variable_scopes(pipeline: Pipeline) -> Iterator[tuple[tuple, dict]]:
    if isinstance(pipeline.data.get("variables"), dict):
        yield ("variables",), pipeline.data["variables"]
    for name, value in pipeline.data.items():
        if not isinstance(value, dict) or name in ("variables", "include", "spec"):
            continue
        if isinstance(value.get("variables"), dict):
            yield (name, "variables"), value["variables"]
        for index, rule in enumerate(value.get("rules") or []):
            if isinstance(rule, dict) and isinstance(rule.get("variables"), dict):
                yield (name, "rules", index, "variables"), rule["variables"]


def token_literal(pipeline: Pipeline) -> Iterator[Finding]:
    for scope_path, variables in _variable_scopes(pipeline):
        for key, raw in variables.items():
            value = raw.get("value") if isinstance(raw, dict) else raw
            if not isinstance(value, str) or not value:
                continue
            shape = next((label for label, pattern in TOKEN_SHAPES if pattern.search(value)), None)
            if shape is None and SECRET_NAME.search(str(key)) and _looks_secret(value):
                shape = "a secret (by its name and value)"
            if shape:
                yield Finding.make(
                    "token-literal",
                    f"variable {key} holds what looks like {shape} as a literal in the YAML; revoke it and "
                    "store it as a masked (and protected) CI/CD variable instead",
                    pipeline.where((*scope_path, key)),
                    job=scope_path[0] if scope_path[0] != "variables" else None,
                )


def _looks_secret(value: str) -> bool:
    if "$" in value or len(value) < 12 or any(ch.isspace() for ch in value):
        return False
    if re.fullmatch(r"[A-Z][A-Z0-9_]*", value):  # the name of another variable
        return False
    if re.match(r"^[a-z]+://", value) and "@" not in value:  # a URL without credentials
        return False
    kinds = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return kinds >= 2


def needs_unknown_job(pipeline: Pipeline) -> Iterator[Finding]:
    jobs = set(pipeline.job_names())
    hidden = {name for name in pipeline.data if isinstance(name, str) and name.startswith(".")}
    severity = "warning" if pipeline.unresolved_includes else None
    for name, job in pipeline.jobs.items():
        for key in ("needs", "dependencies"):
            entries = job.get(key)
            if not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                if isinstance(entry, str):
                    target, optional, external = entry, False, False
                elif isinstance(entry, dict):
                    target = entry.get("job")
                    optional = bool(entry.get("optional"))
                    external = "pipeline" in entry or "project" in entry
                else:
                    continue
                if external or optional or not isinstance(target, str) or target in jobs:
                    continue
                reason = "a hidden template (it never runs)" if target in hidden else "no such job"
                suffix = " (it may come from an include that was not checked)" if severity else ""
                yield Finding.make(
                    "needs-unknown-job", f"job '{name}' {key} '{target}': {reason}{suffix}",
                    pipeline.job_where(name, (key, index)), job=name, severity=severity,
                )


def _mentions_schedule(job: dict) -> bool:
    for rule in job.get("rules") or []:
        if isinstance(rule, dict) and "schedule" in str(rule.get("if", "")) and "CI_PIPELINE_SOURCE" in str(
                rule.get("if", "")):
            return True
    only = job.get("only")
    refs = only.get("refs", []) if isinstance(only, dict) else only or []
    return isinstance(refs, list) and "schedules" in refs


def schedule_rule_missing(pipeline: Pipeline) -> Iterator[Finding]:
    for name, job in pipeline.jobs.items():
        if not SCHEDULE_NAME.search(name) or _mentions_schedule(job):
            continue
        yield Finding.make(
            "schedule-rule-missing",
            f"job '{name}' looks like scheduled work but no rule limits it to "
            '`$CI_PIPELINE_SOURCE == "schedule"`, so it runs in every pipeline (add one, e.g. '
            'rules: [{if: \'$CI_PIPELINE_SOURCE == "schedule"\'}])',
            pipeline.job_where(name, ("rules",)), job=name,
        )


def job_without_script(pipeline: Pipeline) -> Iterator[Finding]:
    """GitLab rejects a visible job that neither runs a script nor triggers a pipeline."""
    for name, job in pipeline.jobs.items():
        if not any(key in job for key in ("script", "trigger", "run")):
            yield Finding.make("job-script-missing", f"job '{name}' has no script, run or trigger (after extends)",
                               pipeline.job_where(name), job=name)


ML_RULES: list[Callable[[Pipeline], Iterator[Finding]]] = [
    gpu_job_unbounded,
    production_deploy_unguarded,
    image_unpinned,
    token_literal,
    needs_unknown_job,
    schedule_rule_missing,
    job_without_script,
]


def check(pipeline: Pipeline) -> list[Finding]:
    findings: list[Finding] = []
    for rule in ML_RULES:
        findings.extend(rule(pipeline))
    return findings

