"""`mlci gate [--run ID] [--warn-only]`: decide whether a trained model may go on.

Writes gate.junit.xml, gate.metrics.txt, gate.json, gate.md and gate.env.
Exit 0 when the gate passed (or failed under warn-only), 1 when it blocked.
On pass the run's model becomes a new registered version, tagged
mlci.validated=true, and takes the `candidate` marker.
"""

from __future__ import annotations

from mlci.errors import ConfigError, GateFailed, UsageError

_SYMBOL = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def configure(parser) -> None:
    parser.add_argument(
        "--run", metavar="ID",
        help="candidate MLflow run id (default: $MLCI_RUN_ID from the train job, else the run in train.json)",
    )
    parser.add_argument(
        "--warn-only", action="store_true", default=None,
        help="report failed rules without failing the job; nothing is registered (gate.warn-only)",
    )


def run(args, ctx) -> int:
    from mlci.adapters.ci_env import read_ci_env
    from mlci.adapters.mlflow import Registry
    from mlci.gate.core import evaluate
    from mlci.gate.policy import policy_from_config
    from mlci.gate.render import GateReport
    from mlci.gate.runner import gather_evidence, register_passed

    config = ctx.config(flags={("gate", "warn-only"): True} if args.warn_only else None)
    policy = policy_from_config(config)
    model = config.get("model", "name")
    if not model:
        raise ConfigError("no registered model name", location=config.where(("model",)),
                          hint="set model.name in mlci.yml (in GitLab CI it defaults to the project name)")
    run_id = args.run or ctx.env.get("MLCI_RUN_ID", "") or _run_of_last_train(ctx)
    if not run_id:
        raise UsageError(
            f"no candidate run: pass --run ID or set MLCI_RUN_ID (no {ctx.out_path('train.json')} either)",
            hint="in a pipeline, mlci-gate gets MLCI_RUN_ID from the train job's dotenv report via needs:; "
                 "locally, run `mlci train` first",
        )
    artifact_path = config.get("model", "artifact-path", default="model")
    registry = Registry.from_config(config, ci=read_ci_env(ctx.env))

    ctx.info(f"gate: model {model!r}, candidate run {run_id}")
    ctx.info(f"registry: {registry.mode} mode ({registry.mode_reason}) at {registry.url}")
    if not policy.rules:
        ctx.warn("gate.rules is empty: the gate checks nothing and every model passes")
    evidence = gather_evidence(registry, policy, model=model, run_id=run_id, artifact_path=artifact_path,
                               where=config.where, say=ctx.info)
    if evidence.champion_version:
        ctx.info(f"{policy.champion_marker}: version {evidence.champion_version.version} "
                 f"(run {evidence.champion_version.run_id or 'unknown'})")
    else:
        ctx.info(f"{policy.champion_marker}: none - cold start, on-no-champion: {policy.on_no_champion}")

    for whose, what in (evidence.budget_artifacts or {}).items():
        if whose != "requested":
            ctx.info(f"budgets of the {whose}: {what}")
    result = evaluate(policy, evidence.candidate, evidence.champion)
    for verdict in result.verdicts:
        symbol = "WARN" if verdict.status == "failed" and not verdict.blocking else _SYMBOL[verdict.status]
        ctx.info(f"  {symbol}  {verdict.rule}: {verdict.reason}")

    registered = None
    if result.passed:
        version, reused, previous = register_passed(
            registry, result, model=model, run_id=run_id, artifact_path=artifact_path,
            champion=evidence.champion_version,
        )
        registered = version.version
        action = "reused" if reused else "registered"
        ctx.info(f"{action} {model} version {registered} (mlci.validated=true); "
                 f"marker candidate -> {registered} (was {previous or 'unset'})")

    report = GateReport(result=result, model=model, candidate=evidence.candidate, champion=evidence.champion,
                        registered_version=registered, registry_mode=registry.mode,
                        champion_marker=policy.champion_marker, budget_artifacts=evidence.budget_artifacts)
    _write_outputs(ctx, report)

    if result.passed:
        ctx.info(f"gate passed: {result.summary()}")
        return 0
    failed = ", ".join(v.rule for v in result.blocking)
    if result.warn_only:
        ctx.warn(f"gate failed ({failed}) but warn-only is set: the job passes, MLCI_GATE=failed, "
                 "nothing was registered")
        return 0
    raise GateFailed(f"gate blocked run {run_id} of model {model!r}: {result.summary()}; failed: {failed}",
                     hint=f"see {ctx.out_path('gate.md')} for each rule's reason")


def _run_of_last_train(ctx) -> str:
    """The run named in train.json, which `mlci train` wrote to the output directory (a local run)."""
    import json

    path = ctx.out_path("train.json")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    run_id = doc.get("run_id") if isinstance(doc, dict) else None
    if not isinstance(run_id, str) or not run_id:
        return ""
    ctx.info(f"candidate run {run_id} from {path} (MLCI_RUN_ID is not set)")
    return run_id


def _write_outputs(ctx, report) -> None:
    from mlci.gate import render
    from mlci.outputs import write_json
    from mlci.outputs.atomic import atomic_write
    from mlci.outputs.dotenv import write_dotenv
    from mlci.outputs.junit import write_junit
    from mlci.outputs.openmetrics import write_openmetrics

    write_junit(ctx.out_path("gate.junit.xml"), render.junit_suites(report))
    write_openmetrics(ctx.out_path("gate.metrics.txt"), render.metric_samples(report))
    write_json(ctx.out_path("gate.json"), render.json_payload(report))
    atomic_write(ctx.out_path("gate.md"), render.markdown(report))
    write_dotenv(ctx.out_path("gate.env"), render.dotenv_values(report))
