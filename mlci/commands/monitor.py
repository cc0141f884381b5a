"""`mlci monitor --env ENV`: judge the deployed version from Prometheus and its logged requests, then act.

Decision ok | rollback | retrain | no-data, with the evidence, written as
monitor-ENV.json / .junit.xml / .metrics.txt / .md / .env. Unless --dry-run:
a rollback decision rolls back through `mlci rollback`'s path when
auto-rollback is on, a retrain decision starts the retraining pipeline
through `mlci trigger`'s path, and both open (or comment on) one GitLab
incident per environment and episode. Exit 0 only for ok.

`mlci monitor --alert-rules FILE` renders the threshold rules as a Prometheus
alerting-rules file instead (checked with promtool when --check).
"""

from __future__ import annotations

from mlci.errors import UsageError


def configure(parser) -> None:
    parser.add_argument("--env", metavar="ENV", help="environment to judge (from deploy.environments)")
    parser.add_argument("--prometheus-url", metavar="URL",
                        help="Prometheus server root (default: monitor.prometheus.url, MLCI_MONITOR_PROMETHEUS_URL)")
    parser.add_argument("--auto-rollback", choices=["true", "false"],
                        help="roll back on a rollback decision (default: monitor.auto-rollback, false)")
    parser.add_argument("--dry-run", action="store_true",
                        help="decide and write the reports, but roll back, trigger and open incidents never")
    parser.add_argument("--at", metavar="TIME",
                        help="judge the window ending at TIME (ISO 8601 or Unix seconds) instead of now")
    parser.add_argument("--alert-rules", metavar="FILE",
                        help="write the threshold rules as a Prometheus alerting-rules file for --env (default: "
                        "every environment) and exit")
    parser.add_argument("--check", action="store_true", help="with --alert-rules: check the file with promtool")


def _parse_time(text: str):
    from datetime import datetime, timezone

    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is neither ISO 8601 nor Unix seconds") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def run(args, ctx) -> int:
    flags = {}
    if args.prometheus_url:
        flags[("monitor", "prometheus", "url")] = args.prometheus_url
    if args.auto_rollback:
        flags[("monitor", "auto-rollback")] = args.auto_rollback == "true"
    config = ctx.config(flags) if flags else ctx.config()
    if args.alert_rules:
        return _alert_rules(args, ctx, config)
    if not args.env:
        raise UsageError("choose the environment to judge: mlci monitor --env ENV (or --alert-rules FILE)")
    return _monitor(args, ctx, config)


def _alert_rules(args, ctx, config) -> int:
    import shutil
    import subprocess

    import yaml

    from mlci.deploy import wiring
    from mlci.deploy.settings import load_settings
    from mlci.errors import CheckFailed, ConfigError
    from mlci.monitor.rules import alert_rules, load_monitor_settings
    from mlci.outputs import atomic_write

    settings = load_monitor_settings(config)
    names = [args.env] if args.env else list(load_settings(config).names)
    document = alert_rules(settings, model=wiring.model_name(config), environments=names)
    header = ("# Prometheus alerting rules rendered by `mlci monitor --alert-rules` from monitor.rules in mlci.yml.\n"
              "# Regression rules compare two registry versions and stay with `mlci monitor`.\n")
    path = atomic_write(args.alert_rules, header + yaml.safe_dump(document, sort_keys=False, width=1000))
    count = sum(len(group["rules"]) for group in document["groups"])
    ctx.info(f"wrote {count} alerting rule(s) for {', '.join(names)} to {path}")
    if args.check:
        promtool = shutil.which("promtool", path=ctx.env.get("PATH"))
        if not promtool:
            raise ConfigError("--check needs promtool on PATH (it ships with Prometheus; Debian: prometheus)")
        done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
        ctx.info((done.stdout + done.stderr).strip())
        if done.returncode != 0:
            raise CheckFailed(f"promtool rejected {path}")
    return 0


def _baseline(registry, model: str, environment: str, version: str):
    from datetime import datetime

    from mlci.deploy.promotion import environment_history
    from mlci.monitor.evaluate import Baseline

    history = environment_history(registry.audit_trail(model), environment)
    for entry in reversed(history):
        if entry.to_version == version:
            if not entry.from_version or entry.from_version == version or not entry.when:
                return None
            try:
                when = datetime.fromisoformat(entry.when.replace("Z", "+00:00"))
            except ValueError:
                return None
            return Baseline(version=entry.from_version, until=when)
    return None


def _monitor(args, ctx, config) -> int:
    from datetime import datetime, timezone
    from pathlib import Path
    from urllib.parse import quote

    from mlci.adapters.prometheus import PrometheusClient
    from mlci.deploy import wiring
    from mlci.deploy.settings import load_settings
    from mlci.errors import CheckFailed, ConfigError
    from mlci.monitor import live_drift
    from mlci.monitor.decide import DriftResult, RuleResult, Traffic, Verdict, decide
    from mlci.monitor.evaluate import evaluate
    from mlci.monitor.report import MonitorRun
    from mlci.monitor.rules import Labels, load_monitor_settings

    settings = load_monitor_settings(config)
    deploy_settings = load_settings(config)
    if deploy_settings.get(args.env) is None:
        raise UsageError(f"unknown environment '{args.env}'; configured environments: "
                         f"{', '.join(deploy_settings.names)}")
    if not settings.rules and not settings.drift.logs:
        raise ConfigError("nothing to monitor: monitor.rules and monitor.drift.logs are both empty",
                          location=config.where(("monitor",)),
                          hint="add rules (e.g. preset: error-rate with max: 0.01) or drift logs to mlci.yml")
    model = wiring.model_name(config)
    ci = wiring.ci_env(ctx)
    registry = wiring.registry_for(config, ci)
    at = _parse_time(args.at) if args.at else None
    checked_at = (at or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    holder = registry.get_marker(model, args.env)
    version = holder.version if holder else None
    baseline = _baseline(registry, model, args.env, version) if version else None
    base = config.path.parent if config.path else Path(".")

    client = None
    if settings.rules:
        client = PrometheusClient.from_settings(settings.prometheus, ctx.env)
    prometheus = client.display_url if client else "(no rules)"
    if version is None:
        traffic = Traffic(None, settings.min_requests, settings.window, "")
        rules = [RuleResult(rule.name, "no-data", rule.action, "", reason=f"no version holds '{args.env}'")
                 for rule in settings.rules]
        verdict = Verdict("no-data", [f"no version of {model} is deployed to '{args.env}'"], rules, traffic,
                          DriftResult(status="off"))
    else:
        labels = Labels(model=model, version=version, environment=args.env)
        if client is not None:
            traffic, rules = evaluate(client, settings, labels, baseline=baseline, at=at)
        else:
            traffic, rules = Traffic(None, 0, settings.window, ""), []
        drift, _dataset = live_drift.measure(config, settings.drift, base=base)
        verdict = decide(rules, traffic, drift)

    monitor_run = MonitorRun(
        model=model, environment=args.env, version=version, verdict=verdict, prometheus=prometheus,
        baseline_version=baseline.version if baseline else None,
        baseline_until=baseline.until.isoformat(timespec="seconds") if baseline else None,
        checked_at=checked_at,
    )
    if ci.job_url:
        monitor_run.links["job"] = ci.job_url
    if ci.pipeline_url:
        monitor_run.links["pipeline"] = ci.pipeline_url
    breached = next((rule for rule in verdict.rules if rule.status == "breached"), None)
    if breached is not None and client is not None:
        monitor_run.links["Prometheus"] = (f"{client.display_url}/graph?g0.expr={quote(breached.query)}"
                                           f"&g0.tab=0&g0.range_input={breached.window}")
    _write(ctx, monitor_run)
    ctx.info(_terminal(monitor_run))
    if not args.dry_run:
        try:
            _act(ctx, config, settings, deploy_settings, registry, ci, monitor_run)
        finally:
            _write(ctx, monitor_run)
    if verdict.decision != "ok":
        raise CheckFailed(f"monitor decided {verdict.decision} for '{args.env}': {verdict.evidence}")
    return 0


def _act(ctx, config, settings, deploy_settings, registry, ci, monitor_run) -> None:
    """Roll back or retrain, then open the incident; a failed action is in the incident, then raised."""
    from mlci.errors import MlciError

    failure = None
    try:
        _rollback_or_retrain(ctx, config, settings, deploy_settings, registry, ci, monitor_run)
    except MlciError as exc:
        failure = exc  # cli.main prints it once the incident records it
    _incident(ctx, config, settings, ci, monitor_run)
    if failure is not None:
        raise failure


def _rollback_or_retrain(ctx, config, settings, deploy_settings, registry, ci, monitor_run) -> None:
    from mlci.deploy import wiring
    from mlci.deploy.flow import DeployFailed, rollback
    from mlci.outputs import write_json

    verdict = monitor_run.verdict
    environment = monitor_run.environment
    evidence = verdict.evidence
    if verdict.decision == "rollback":
        if not settings.auto_rollback:
            monitor_run.actions["rollback"] = {
                "done": False, "summary": "auto-rollback is off (monitor.auto-rollback): start the manual "
                f"rollback job, or `mlci rollback --env {environment}`"}
        else:
            reason = f"mlci monitor: {evidence}"[:1500]
            try:
                outcome = rollback(registry, deploy_settings, model=monitor_run.model, env=environment, to=None,
                                   reason=reason, runtime=wiring.runtime(ctx, config, ci))
            except DeployFailed as exc:
                write_json(ctx.out_path(f"rollback-{environment}.json"), exc.outcome.to_json())
                monitor_run.actions["rollback"] = {"done": False, "summary": f"rollback failed: {exc.message}"}
                raise
            write_json(ctx.out_path(f"rollback-{environment}.json"), outcome.to_json())
            monitor_run.actions["rollback"] = {
                "done": True, "from-version": outcome.from_version, "to-version": outcome.to_version,
                "summary": f"rolled '{environment}' back from version {outcome.from_version} to "
                           f"{outcome.to_version}"}
            ctx.info(monitor_run.actions["rollback"]["summary"])
    if verdict.decision == "retrain":
        if not settings.retrain:
            monitor_run.actions["retrain"] = {"done": False, "summary": "monitor.retrain is off"}
        else:
            from mlci.commands.trigger import start_pipeline

            variables = {"MLCI_PIPELINE": "retrain", "MLCI_FORCE_RETRAIN": "true",
                         "MLCI_MONITOR_ENVIRONMENT": environment}
            try:
                pipeline, api, ref = start_pipeline(config, ctx.env, variables=variables, ref=settings.retrain_ref)
            except Exception as exc:
                monitor_run.actions["retrain"] = {"done": False, "summary": f"could not start retraining: {exc}"}
                raise
            monitor_run.actions["retrain"] = {
                "done": True, "pipeline": pipeline.id, "url": pipeline.web_url, "ref": ref, "api": api,
                "summary": f"started retraining pipeline #{pipeline.id} on {ref}"}
            monitor_run.links["retraining pipeline"] = pipeline.web_url
            ctx.info(f"{monitor_run.actions['retrain']['summary']}: {pipeline.web_url}")


def _incident(ctx, config, settings, ci, monitor_run) -> None:
    verdict = monitor_run.verdict
    environment = monitor_run.environment
    incident = settings.incident
    if incident.get("enabled", True) and verdict.decision in incident.get("on", ["rollback", "retrain"]):
        from mlci.adapters.gitlab import GitLabClient
        from mlci.monitor.report import incident_title, to_markdown

        client = GitLabClient.from_config(config, ctx.env)
        note_key = f"job-{ci.job_id}" if ci.job_id else f"run-{monitor_run.checked_at}"
        body = to_markdown(monitor_run)
        result = client.upsert_incident(
            key=f"{monitor_run.model}:{environment}", title=incident_title(monitor_run),
            description=body, labels=list(incident.get("labels") or []), note=body, note_key=note_key,
        )
        monitor_run.actions["incident"] = {"done": True, "iid": result.iid, "url": result.web_url,
                                           "action": result.action,
                                           "summary": f"incident #{result.iid} {result.action}"}
        monitor_run.links["incident"] = result.web_url
        ctx.info(f"incident #{result.iid} {result.action}: {result.web_url}")


def _write(ctx, monitor_run) -> None:
    from mlci.monitor import report
    from mlci.outputs import atomic_write, write_json
    from mlci.outputs.dotenv import write_dotenv
    from mlci.outputs.junit import write_junit
    from mlci.outputs.openmetrics import write_openmetrics

    name = f"monitor-{monitor_run.environment}"
    write_json(ctx.out_path(f"{name}.json"), monitor_run.to_json())
    write_junit(ctx.out_path(f"{name}.junit.xml"), report.to_junit(monitor_run))
    write_openmetrics(ctx.out_path(f"{name}.metrics.txt"), report.to_openmetrics(monitor_run))
    atomic_write(ctx.out_path(f"{name}.md"), report.to_markdown(monitor_run))
    write_dotenv(ctx.out_path(f"{name}.env"), {
        "MLCI_MONITOR_DECISION": monitor_run.verdict.decision,
        "MLCI_MONITOR_ENVIRONMENT": monitor_run.environment,
        "MLCI_MONITOR_VERSION": monitor_run.version or "",
        "MLCI_MONITOR_INCIDENT_URL": monitor_run.links.get("incident", ""),
    })


def _terminal(monitor_run) -> str:
    from mlci.monitor.report import _fmt

    verdict = monitor_run.verdict
    lines = [f"monitor {monitor_run.model} in '{monitor_run.environment}' (version {monitor_run.version}): "
             f"{verdict.traffic.describe()}"]
    for rule in verdict.rules:
        baseline = (f", baseline v{rule.baseline_version} {_fmt(rule.baseline, rule.unit)}"
                    if rule.baseline_query else "")
        lines.append(f"  {rule.status:<9} {rule.name}: {_fmt(rule.value, rule.unit)} ({rule.threshold}{baseline})"
                     + (f" - {rule.reason}" if rule.reason and rule.status != "ok" else ""))
    if verdict.drift.status != "off":
        lines.append(f"  {verdict.drift.status:<9} live data drift: {verdict.drift.reason}")
    lines.append(f"decision: {verdict.decision}" + (f" ({verdict.evidence})" if verdict.reasons else ""))
    return "\n".join(lines)
