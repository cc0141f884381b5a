"""`mlci canary start|analyze|promote|abort --env ENV`: canary and A/B releases decided by a significance test.

start    serve the blessed new version beside the environment's and route --percent of the traffic to it
analyze  read both versions' outcomes from Prometheus and decide promote, rollback or continue
         (exit 0 for promote and continue, 1 for rollback); --act carries a canary's decision out
promote  the normal deploy of the new version to the environment, then all traffic to it
abort    all traffic back to the stable version, the new version's server stopped

Artifacts: canary-ENV.json, .junit.xml, .md and .env in the output directory.
"""

from __future__ import annotations

import time

ACTIONS = ("start", "analyze", "promote", "abort")


def configure(parser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    parser.add_argument("--env", metavar="ENV",
                        help="environment (default: deploy.canary.environment, else the last environment)")
    parser.add_argument("--percent", type=float, metavar="N",
                        help="start: share of the traffic for the new version (default: deploy.canary.percent)")
    parser.add_argument("--mode", choices=["canary", "ab"], help="start: canary or A/B (default: deploy.canary.mode)")
    parser.add_argument("--version", metavar="V",
                        help="start: the new version (default: $MLCI_MODEL_VERSION, else the holder of the "
                        "previous environment's marker)")
    parser.add_argument("--wait", metavar="DURATION",
                        help="analyze: keep analyzing every deploy.canary.poll while the decision is continue, for "
                        "up to DURATION (default: deploy.canary.wait; bounded by the job's timeout)")
    parser.add_argument("--act", action="store_true",
                        help="analyze: promote on promote, abort on rollback (canary mode only; an A/B test only "
                        "recommends)")
    parser.add_argument("--reason", metavar="TEXT", help="promote/abort: why, kept in the audit trail")
    parser.add_argument("--force", action="store_true",
                        help="promote: even though the analysis did not decide promote")


def run(args, ctx) -> int:
    from mlci.canary.settings import load_canary_settings
    from mlci.deploy import wiring

    config = ctx.config()
    settings = load_canary_settings(config, environment=args.env)
    model = wiring.model_name(config)
    ci = wiring.ci_env(ctx)
    registry = wiring.registry_for(config, ci)
    runtime = wiring.runtime(ctx, config, ci)
    if args.action == "start":
        return _start(args, ctx, config, settings, model, registry, runtime)
    if args.action == "analyze":
        return _analyze(args, ctx, config, settings, model, registry, runtime)
    return _finish(args, ctx, config, settings, model, registry, runtime, args.action)


def _reader(ctx, config, model):
    from mlci.adapters.prometheus import PrometheusClient
    from mlci.canary.outcomes import OutcomeReader
    from mlci.monitor.rules import load_monitor_settings

    monitor = load_monitor_settings(config)
    client = PrometheusClient.from_settings(monitor.prometheus, ctx.env)
    return OutcomeReader(client, model=model, selector=monitor.selector), client.display_url


def _start(args, ctx, config, settings, model, registry, runtime) -> int:
    import dataclasses

    from mlci.canary import flow
    from mlci.outputs import write_json

    if args.mode:
        settings = dataclasses.replace(settings, mode=args.mode)
    percent = settings.percent if args.percent is None else args.percent
    if not 0 < percent < 100:
        from mlci.errors import UsageError

        raise UsageError(f"--percent must be between 0 and 100 (exclusive), got {percent:g}")
    version, origin = flow.choose_canary_version(registry, settings, model=model, flag=args.version,
                                                 env_value=ctx.env.get("MLCI_MODEL_VERSION"))
    reader, _ = _reader(ctx, config, model)
    result = flow.start(registry, settings, model=model, version=version, percent=percent, reader=reader,
                        runtime=runtime)
    state = result["state"]
    env = settings.environment.name
    write_json(ctx.out_path(f"canary-{env}.json"), {
        "version": 1, "action": "start", "model": model, "environment": env, "mode": state["mode"],
        "new-version": version, "version-source": origin, "stable-version": state["stable"],
        "percent": percent, "started-at": state["started-at"], "server": result["server"],
        "router": result["router"], "design": {name: metric["design"] for name, metric in state["metrics"].items()},
    })
    from mlci.outputs.dotenv import write_dotenv

    write_dotenv(ctx.out_path(f"canary-{env}.env"), {
        "MLCI_CANARY_DECISION": "continue", "MLCI_CANARY_ENVIRONMENT": env, "MLCI_CANARY_VERSION": version,
        "MLCI_CANARY_STABLE_VERSION": state["stable"]})
    mode = "A/B test" if state["mode"] == "ab" else "canary"
    ctx.info(f"started a {mode} in '{env}': version {version} ({origin}) takes {percent:g}% of the traffic, "
             f"version {state['stable']} the rest")
    for name, metric in state["metrics"].items():
        design = metric["design"]
        ctx.info(f"  {name}: baseline {design['baseline']:.2%} ({design['baseline-source']}); planned "
                 f"{design['n-canary']} requests of the new version, {design['n-stable']} of the stable one")
    return 0


def _analyze_once(ctx, reader, registry, settings, model, version, state):
    from datetime import datetime

    from mlci.canary import decide, flow
    from mlci.canary.outcomes import Arm

    env = settings.environment.name
    started = datetime.fromisoformat(state["started-at"].replace("Z", "+00:00"))
    stable, canary = Arm(state["stable"], env), Arm(state["canary"], settings.canary_environment)
    counts, queries = {}, {}
    for metric in settings.metrics:
        if metric.name not in state["metrics"]:
            continue
        counts[metric.name], queries[metric.name] = reader.counts(metric, stable, canary, started)
    analysis = decide.analyze(state, counts, flow.now_utc())
    if analysis.looked or (analysis.decision != decide.CONTINUE and not analysis.decided_before):
        flow.save_state(registry, model, version, state)
    return analysis, queries


def _analyze(args, ctx, config, settings, model, registry, runtime) -> int:
    from mlci.canary import decide, flow, report
    from mlci.durations import parse_duration
    from mlci.errors import GateFailed, UsageError
    from mlci.outputs import write_json
    from mlci.outputs.atomic import atomic_write
    from mlci.outputs.dotenv import write_dotenv
    from mlci.outputs.junit import write_junit

    env = settings.environment.name
    version, state = flow.require_running(registry, model, env)
    if state.get("finished"):
        ctx.info(f"the experiment of version {version} in '{env}' already ended: {state['finished']['action']}")
    try:
        wait = parse_duration(args.wait).total_seconds() if args.wait else settings.wait
    except ValueError as exc:
        raise UsageError(f"--wait: {exc}") from None
    job_timeout = float(ctx.env.get("CI_JOB_TIMEOUT") or 0)
    if job_timeout:
        wait = min(wait, max(0.0, job_timeout - 120))  # leave the job time to act and upload its artifacts
    deadline = time.monotonic() + wait
    reader, prometheus = _reader(ctx, config, model)
    while True:
        analysis, queries = _analyze_once(ctx, reader, registry, settings, model, version, state)
        if analysis.decision != decide.CONTINUE or state.get("finished") or time.monotonic() + settings.poll > deadline:
            break
        ctx.info(f"continue: {analysis.rule}; next analysis in {settings.poll:g} s")
        time.sleep(settings.poll)
    payload = report.to_json(analysis, model=model, queries=queries, extra={"prometheus": prometheus})
    actions: dict = {}
    if args.act and not state.get("finished") and analysis.decision != decide.CONTINUE:
        if analysis.mode == decide.AB:
            ctx.info("A/B test: the result is a recommendation; promote or abort by hand")
        else:
            action = flow.PROMOTE if analysis.decision == decide.PROMOTE else flow.ABORT
            actions = _carry_out(ctx, config, settings, model, registry, runtime, state, action,
                                 f"canary analysis: {analysis.rule}")
    payload["actions"] = actions
    write_json(ctx.out_path(f"canary-{env}.json"), payload)
    write_junit(ctx.out_path(f"canary-{env}.junit.xml"), report.to_junit(payload))
    atomic_write(ctx.out_path(f"canary-{env}.md"), report.to_markdown(payload))
    write_dotenv(ctx.out_path(f"canary-{env}.env"), report.to_dotenv(payload))
    for metric in payload["metrics"]:
        ctx.info(f"  {metric['name']}: {metric['status']}: {metric['reason']}")
    ctx.info(f"decision: {analysis.decision}: {analysis.rule}")
    if analysis.decision == decide.ROLLBACK:
        raise GateFailed(f"version {state['canary']} is not released in '{env}': {analysis.rule}")
    return 0


def _carry_out(ctx, config, settings, model, registry, runtime, state, action, reason) -> dict:
    from mlci.canary import flow

    def deploy_new(version):
        from mlci.deploy.step import deploy_to

        return deploy_to(ctx, config, environment=settings.environment.name, version=version)

    result = flow.finish(registry, settings, state, model=model, action=action, reason=reason, runtime=runtime,
                         deploy_new=deploy_new)
    verb = "promoted" if action == flow.PROMOTE else "aborted"
    target = state["canary"] if action == flow.PROMOTE else state["stable"]
    ctx.info(f"{verb}: '{settings.environment.name}' serves version {target} to all of its traffic")
    return {"action": action, "router": result["router"], **({"deploy": result["deploy"]} if "deploy" in result
                                                               else {})}


def _finish(args, ctx, config, settings, model, registry, runtime, which) -> int:
    from mlci.canary import decide, flow
    from mlci.errors import UsageError
    from mlci.outputs import write_json

    env = settings.environment.name
    version, state = flow.require_running(registry, model, env)
    if state.get("finished"):
        raise UsageError(f"the experiment of version {version} in '{env}' already ended "
                         f"({state['finished']['action']} at {state['finished']['at']})")
    decided = (state.get("decision") or {}).get("decision")
    if which == "promote" and decided != decide.PROMOTE and not args.force:
        raise flow.CanaryRefused(
            f"refusing to promote version {version} in '{env}': the analysis decided "
            f"{decided or 'nothing yet (continue)'}",
            hint="wait for `mlci canary analyze` to decide promote, or pass --force with a --reason")
    reason = (args.reason or ctx.env.get("MLCI_CANARY_REASON") or "").strip() or (
        f"analysis decided {decided}" if decided else "(no reason given)")
    action = flow.PROMOTE if which == "promote" else flow.ABORT
    result = _carry_out(ctx, config, settings, model, registry, runtime, state, action, reason)
    write_json(ctx.out_path(f"canary-{env}-{which}.json"), {
        "version": 1, "action": which, "model": model, "environment": env, "new-version": state["canary"],
        "stable-version": state["stable"], "decision": decided, "reason": reason, **result})
    return 0
