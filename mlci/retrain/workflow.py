"""Wiring for `mlci retrain decide|conclude`: read inputs, call the pure core, talk to adapters, write artifacts.

Adapters (MLflow registry, GitLab, deploy) are imported inside the functions
that need them; the decision and the texts live in decision.py / conclude.py.
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlci.durations import format_duration, gitlab_timeout, parse_duration
from mlci.errors import ConfigError, MlciError, UsageError
from mlci.outputs.atomic import atomic_write, write_json
from mlci.outputs.dotenv import write_dotenv
from mlci.retrain.conclude import (
    Conclusion,
    branch_name,
    conclude_blocked,
    conclude_passed,
    conclude_skipped,
    local_images,
    merge_request_description,
    merge_request_title,
    notification_text,
    read_gate_verdict,
    replace_images,
    split_reasons,
)
from mlci.retrain.decision import decide, parse_flag
from mlci.retrain.settings import RetrainSettings, load_settings

DECISION_FILE = "retrain-decision.json"
DECISION_ENV = "retrain.env"
CHILD_PIPELINE_FILE = "retrain-pipeline.yml"
SUMMARY_FILE = "retrain-summary.json"


# ---------------------------------------------------------------------------- decide


def _now(raw: str | None) -> datetime:
    if not raw:
        return datetime.now(timezone.utc)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"--now {raw!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _flag(env, name: str, override: str | None = None) -> bool | None:
    try:
        return parse_flag(name, override if override is not None else env.get(name))
    except ValueError as exc:
        raise UsageError(str(exc), hint=f"set {name} to true or false") from None


def _model_name(config) -> str:
    name = config.get("model", "name")
    if not name:
        raise ConfigError(
            "no model name: set model.name in mlci.yml (or project.name / CI_PROJECT_NAME)",
            location=config.where(("model",)) if config.document else None,
        )
    return name


def _tags(values: list[str]) -> tuple[str, ...]:
    tags: list[str] = []
    for value in values:
        for tag in value.split(","):
            if tag.strip() and tag.strip() not in tags:
                tags.append(tag.strip())
    return tuple(tags)


def _shareable_uri(uri: str | None) -> bool:
    """A URI is written into the child pipeline only when it carries no password."""
    if not uri:
        return False
    try:
        return urlsplit(uri).password is None
    except ValueError:
        return False


def _share_install_setting(ctx, name: str, literal: dict[str, str], expanded: dict[str, str]) -> None:
    """Pass this job's install setting to the child jobs without writing a secret into the artifact.

    The job token in the default index URL is put back as ${CI_JOB_TOKEN}, so each child job
    expands its own token; any other credential stays out and the child jobs go without it.
    """
    value = ctx.env.get(name, "")
    if not value:
        return
    token = ctx.env.get("CI_JOB_TOKEN", "")
    if token and token in value:
        value = value.replace(token, "${CI_JOB_TOKEN}")
        if _has_password(value.replace(":${CI_JOB_TOKEN}@", "@")):
            ctx.warn(f"{name} holds credentials besides the job token, so it is not written into the child "
                     "pipeline; define it as a CI/CD variable so the child jobs inherit it")
            return
        expanded[name] = value.replace("$", "$$").replace("$${CI_JOB_TOKEN}", "${CI_JOB_TOKEN}")
    elif any(_has_password(part) for part in value.split()):
        ctx.warn(f"{name} holds credentials, so it is not written into the child pipeline; "
                 "define it as a CI/CD variable so the child jobs inherit it")
    else:
        literal[name] = value


def _has_password(text: str) -> bool:
    """True when a URL in `text` (an index URL, or a requirement such as `mlci @ https://...`) has a password."""
    return any(not _shareable_uri(url) for url in re.findall(r"[A-Za-z][\w+.-]*://\S+", text))


def _child_spec(args, ctx, config, ci, settings: RetrainSettings):
    from mlci.retrain.child_pipeline import ChildPipelineSpec

    timeout = ""
    if args.train_timeout:
        try:
            timeout = gitlab_timeout(parse_duration(args.train_timeout))
        except ValueError as exc:
            raise UsageError(f"--train-timeout: {exc}") from None
    train_command = args.train_command.strip()
    argv = [part for part in args.train_argv if part != "--"] if args.train_argv else []
    if argv:
        if train_command:
            raise UsageError("give the training command either with --train-command or after --, not both")
        train_command = shlex.join(argv)
    variables: dict[str, str] = {}
    if ctx.config_path is not None:
        variables["MLCI_CONFIG"] = str(ctx.config_path)
    for key, variable in ((("mlflow", "tracking-uri"), "MLFLOW_TRACKING_URI"),
                          (("mlflow", "registry-uri"), "MLFLOW_REGISTRY_URI")):
        uri = config.get(*key)
        if _shareable_uri(uri):
            variables[variable] = uri
        elif uri:
            ctx.warn(f"{variable} holds credentials, so it is not written into the child pipeline; "
                     "define it as a CI/CD variable so the child jobs inherit it")
    if ctx.env.get("MLCI_DEPLOY_STATE_DIR"):
        # The child's conclude deploys staging: it must stop and record servers where the parent's deploys do.
        # GitLab hands pipeline and schedule variables to a child pipeline only when told to forward them.
        variables["MLCI_DEPLOY_STATE_DIR"] = ctx.env["MLCI_DEPLOY_STATE_DIR"]
    light_image = args.light_image if args.light_image is not None else ctx.env.get("CI_JOB_IMAGE", "")
    setup = [c for c in (args.setup_command or []) if c.strip()]
    expanded: dict[str, str] = {}
    if not setup and ctx.env.get("MLCI_INSTALL"):
        # Started by a template job: the child jobs run the same install step, for the version that decided.
        from mlci import __version__
        from mlci.generate.install import install_step

        setup = [install_step()]
        variables["MLCI_VERSION"] = __version__
        variables["MLCI_INSTALL"] = ctx.env["MLCI_INSTALL"]
        _share_install_setting(ctx, "MLCI_INSTALL_SPEC", variables, expanded)
        _share_install_setting(ctx, "MLCI_INDEX_URL", variables, expanded)
    else:
        variables.update(_setup_variables(ctx, setup))
    return ChildPipelineSpec(
        image=args.image,
        train_tags=_tags(args.train_tags),
        train_timeout=timeout,
        train_command=train_command,
        light_image=light_image,
        light_tags=_tags(args.light_tags),
        setup_script=tuple(setup),
        out_dir=str(ctx.out_dir).rstrip("/") or "mlci-out",
        variables=variables,
        expanded_variables=expanded,
        parent_pipeline_id=ci.pipeline_id,
        data_job="" if args.data_job.strip().lower() in ("", "none") else args.data_job.strip(),
        train_retry_max=args.train_retry,
        with_report=settings.on_pass == "merge-request",
    )


_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def _setup_variables(ctx, setup: list[str]) -> dict[str, str]:
    """The values the setup lines refer to ($MLCI_INSTALL_SPEC), handed to the child as data.

    The template's setup line is fixed text that refers to a variable; the child repeats the text and
    gets the value as an unexpanded variable, so a spec holding `"; touch x` stays a pip argument.
    GitLab's own variables reach the child anyway; a secret is never written into the child pipeline
    (it is an artifact), so it must come from a CI/CD variable the child inherits.
    """
    from mlci.redact import is_secret_name

    found: dict[str, str] = {}
    for line in setup:
        for match in _REFERENCE.finditer(line):
            name = match.group(1) or match.group(2)
            if name.startswith(("CI_", "GITLAB_")) or name not in ctx.env:
                continue
            if is_secret_name(name):
                ctx.warn(f"the setup command refers to ${name}, which is a secret and is not written into the "
                         "child pipeline; define it as a masked CI/CD variable so the child jobs inherit it")
                continue
            found[name] = ctx.env[name]
    return found


def _check_on_pass(ctx, config, settings: RetrainSettings) -> None:
    """Catch what would make conclude fail before hours of GPU training, not after."""
    if settings.on_pass == "promote-staging":
        from mlci.retrain.promotion import first_environment

        first_environment(config)
    elif settings.on_pass == "merge-request":
        variable = config.get("gitlab", "token-variable") or "MLCI_GITLAB_TOKEN"
        if not ctx.env.get(variable):
            ctx.warn(f"retrain.on-pass is merge-request but {variable} is not set here; the conclude job "
                     "needs a project access token with api scope to open the merge request")


def run_decide(args, ctx) -> int:
    from mlci.adapters.ci_env import read_ci_env
    from mlci.retrain.child_pipeline import build_child_pipeline, render_child_pipeline

    config = ctx.config()
    settings = load_settings(config)
    ci = read_ci_env(ctx.env)
    model = _model_name(config)
    drift = _flag(ctx.env, "MLCI_DRIFT", args.drift)
    force = bool(args.force or _flag(ctx.env, "MLCI_FORCE_RETRAIN"))
    now = _now(args.now)
    spec = _child_spec(args, ctx, config, ci, settings)  # bad flags fail before any network call
    _check_on_pass(ctx, config, settings)

    from mlci.adapters.mlflow import Registry

    # The same marker the gate compares against, so "how old is the champion" means the gate's champion.
    marker = config.get("gate", "champion-marker") or "champion"
    champion = Registry.from_config(config, ci).get_marker(model, marker)
    champion_created = (
        datetime.fromtimestamp(champion.created_ms / 1000, tz=timezone.utc) if champion is not None else None
    )
    decision = decide(drift, champion_created, now, settings.max_model_age, force)

    child = build_child_pipeline(decision, spec)
    jobs = [name for name, value in child.items() if isinstance(value, dict) and "script" in value]
    atomic_write(ctx.out_path(CHILD_PIPELINE_FILE), render_child_pipeline(decision, spec))
    write_json(ctx.out_path(DECISION_FILE), {
        "retrain": decision.retrain,
        "reason": decision.summary,
        "reasons": decision.reasons,
        "model": model,
        "inputs": {
            "drift": drift,
            "force": force,
            "max_model_age": format_duration(settings.max_model_age) if settings.max_model_age else None,
            "champion": None if champion is None else {
                "version": champion.version,
                "created": champion_created.isoformat(timespec="seconds"),
                "age_seconds": int(max((now - champion_created).total_seconds(), 0)),
            },
            "now": now.isoformat(timespec="seconds"),
        },
        "child_pipeline": CHILD_PIPELINE_FILE,
        "child_jobs": jobs,
    })
    write_dotenv(ctx.out_path(DECISION_ENV), {
        "MLCI_RETRAIN": decision.retrain,
        "MLCI_RETRAIN_REASON": " ".join(decision.summary.split()),
    })

    champion_text = f"{marker} v{champion.version}" if champion is not None else f"no {marker}"
    verdict = "retrain" if decision.retrain else "no retraining needed"
    ctx.info(f"mlci: {model}: {verdict} ({champion_text})")
    for reason in decision.reasons:
        ctx.info(f"  - {reason}")
    ctx.info(f"mlci: wrote {ctx.out_path(CHILD_PIPELINE_FILE)} with job(s): {', '.join(jobs)}")

    if drift:
        _notify(ctx, settings, "drift", model, ci,
                text=f"mlci retrain {model}: data drift detected; "
                     + ("retraining starts" if decision.retrain else "no retraining"),
                details={"drift": True, "retrain": decision.retrain, "reasons": decision.reasons})
    return 0


# -------------------------------------------------------------------------- conclude


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _target_branch(config, settings: RetrainSettings, ci) -> str:
    target = settings.mr_target_branch or ci.commit_branch or ci.default_branch
    if not target:
        raise config.error(
            ("retrain", "on-pass"),
            "on-pass: merge-request needs a target branch, and this job has neither "
            "CI_COMMIT_BRANCH nor CI_DEFAULT_BRANCH",
            hint="set retrain.merge-request.target-branch",
        )
    return target


def _with_uploaded_images(ctx, client, description: str) -> str:
    """report.md links its plots relative to the out dir; an MR description needs them on the instance."""
    out_dir = ctx.out_dir.resolve()
    urls = {}
    for relative in local_images(description):
        path = (out_dir / relative).resolve()
        if path.is_file() and path.is_relative_to(out_dir):
            urls[relative] = client.upload(path).url
        else:
            ctx.warn(f"the report links {relative}, which is not in {ctx.out_dir}; the image will not show")
    return replace_images(description, urls)


def _open_merge_request(ctx, config, settings: RetrainSettings, ci, verdict, reasons):
    def open_mr(model: str, version: str) -> dict[str, Any]:
        from mlci.adapters.gitlab import GitLabClient

        target = _target_branch(config, settings, ci)
        branch = branch_name(settings.mr_branch_prefix, model)
        report_md = _read_text(ctx.out_path("report.md"))
        description = merge_request_description(
            model=model, version=version, run_id=verdict.run_id, reasons=reasons,
            report_md=report_md, gate_md=_read_text(ctx.out_path("gate.md")), ci=ci,
        )
        client = GitLabClient.from_config(config, ctx.env)
        description = _with_uploaded_images(ctx, client, description)
        client.create_branch(branch, ci.commit_sha or target)
        result = client.upsert_merge_request(
            source_branch=branch, target_branch=target,
            title=merge_request_title(model, version), description=description, key=model,
        )
        return {"merge_request": {
            "iid": result.iid, "action": result.action, "web_url": result.web_url,
            "source_branch": branch, "target_branch": target,
            "description_source": "report.md" if report_md and report_md.strip() else "generated",
        }}

    return open_mr


def _promote(ctx, config):
    def promote(model: str, version: str) -> dict[str, Any]:
        from mlci.retrain.promotion import promote_to_first_environment

        return promote_to_first_environment(ctx, config, version=version)

    return promote


def run_conclude(args, ctx) -> int:
    from mlci.adapters.ci_env import read_ci_env

    config = ctx.config()
    settings = load_settings(config)
    ci = read_ci_env(ctx.env)
    reasons = split_reasons(ctx.env.get("MLCI_RETRAIN_REASON"))
    default_model = config.get("model", "name") or ""

    if args.skipped:
        conclusion = conclude_skipped(default_model, reasons)
        events = ["skipped"]
    else:
        verdict = read_gate_verdict(ctx.env, default_model)
        if verdict.status == "failed":
            conclusion = conclude_blocked(verdict, reasons, settings.on_pass)
        else:
            from mlci.adapters.mlflow import Registry

            try:
                registry = Registry.from_config(config, ci)
                conclusion = conclude_passed(
                    verdict, reasons, settings.on_pass, registry=registry,
                    promote=_promote(ctx, config),
                    open_merge_request=_open_merge_request(ctx, config, settings, ci, verdict, reasons),
                )
            except MlciError as exc:
                # The summary records the failure too; the error itself still decides the exit code.
                failed = Conclusion(
                    outcome="error", message=f"passed the gate, but on-pass {settings.on_pass} failed: {exc.message}",
                    model=verdict.model, model_version=verdict.version, run_id=verdict.run_id, gate="passed",
                    on_pass=settings.on_pass, reasons=reasons,
                )
                write_json(ctx.out_path(SUMMARY_FILE), failed.summary(ci))
                raise
        events = ["gate", "retrained" if conclusion.outcome != "blocked" else "blocked"]

    write_json(ctx.out_path(SUMMARY_FILE), conclusion.summary(ci))
    _log(ctx, conclusion)
    details = conclusion.summary(ci)
    details.pop("pipeline", None)
    for event in events:
        text = notification_text(conclusion)
        if event == "gate":
            text = f"mlci retrain {conclusion.model}: gate {conclusion.gate} for v{conclusion.model_version}"
        _notify(ctx, settings, event, conclusion.model, ci, text=text, details=details)
    return conclusion.exit_code


def _log(ctx, conclusion: Conclusion) -> None:
    report = ctx.error if conclusion.exit_code else ctx.info
    report(f"mlci: retrain {conclusion.outcome}: {conclusion.message}")
    if conclusion.reasons and conclusion.outcome != "skipped":
        ctx.info(f"  retrained because: {'; '.join(conclusion.reasons)}")
    for warning in conclusion.warnings:
        ctx.warn(warning)
    ctx.info(f"mlci: wrote {ctx.out_path(SUMMARY_FILE)}")


# ----------------------------------------------------------------------- notifications


def _notify(ctx, settings: RetrainSettings, event: str, model: str, ci, *, text: str, details: dict) -> None:
    if not any(event in webhook.events for webhook in settings.notify):
        return
    from mlci.retrain.notify import build_payload, send_event

    payload = build_payload(event, model=model, text=text, details=details, ci=ci)
    for result in send_event(settings.notify, event, payload, env=ctx.env):
        if result.delivered:
            ctx.info(f"mlci: notified {result.webhook} ({event})")
        else:
            ctx.warn(f"notification {event} to {result.webhook} failed: {result.error}")
