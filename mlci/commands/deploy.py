"""`mlci deploy --to ENV [--version V]`: promote a blessed model version to an environment."""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument(
        "--to", required=True, metavar="ENV", help="environment to deploy to (from deploy.environments)"
    )
    parser.add_argument(
        "--version", metavar="V",
        help="model version (default: $MLCI_MODEL_VERSION from the gate's dotenv, else the holder of the "
        "previous environment's marker, or of 'candidate' for the first environment)",
    )


def run(args, ctx) -> int:
    from mlci.deploy import wiring
    from mlci.deploy.flow import DeployFailed, deploy
    from mlci.deploy.promotion import PromotionRefused
    from mlci.deploy.settings import load_settings
    from mlci.outputs import write_json
    from mlci.outputs.dotenv import write_dotenv

    config = ctx.config()
    settings = load_settings(config)
    model = wiring.model_name(config)
    ci = wiring.ci_env(ctx)
    if not (args.version or "").strip() and not ctx.env.get("MLCI_MODEL_VERSION", "").strip():
        try:
            wiring.refuse_after_failed_gate(ctx.out_dir, model)
        except PromotionRefused as exc:
            write_json(ctx.out_path(f"deploy-{args.to}.json"),
                       wiring.refused_log("deploy", model, args.to, exc.message, ci))
            raise
    log_path = ctx.out_path(f"deploy-{args.to}.json")
    registry = wiring.registry_for(config, ci)
    try:
        outcome = deploy(
            registry, settings, model=model, to=args.to, version_flag=args.version,
            version_env=ctx.env.get("MLCI_MODEL_VERSION"), runtime=wiring.runtime(ctx, config, ci),
        )
    except PromotionRefused as exc:
        write_json(log_path, wiring.refused_log("deploy", model, args.to, exc.message, ci))
        raise
    except DeployFailed as exc:
        write_json(log_path, exc.outcome.to_json())
        kept = exc.outcome.from_version or "(none)"
        ctx.error(f"deploy target failed; the '{args.to}' marker stays on version {kept}")
        raise
    write_json(log_path, outcome.to_json())
    write_dotenv(ctx.out_path(f"deploy-{args.to}.env"), {
        "MLCI_DEPLOY_URL": outcome.url or "",
        "MLCI_MODEL_VERSION": outcome.to_version,
        "MLCI_ENVIRONMENT": outcome.environment,
    })
    moved = ", ".join(outcome.markers_moved) or "none (already held)"
    ctx.info(f"{outcome.details.get('target-summary', '')}")
    ctx.info(
        f"{outcome.status} {model} version {outcome.to_version} to '{outcome.environment}' "
        f"(previously {outcome.from_version or 'none'}); markers moved: {moved}"
    )
    if outcome.url:
        ctx.info(f"url: {outcome.url}")
    return 0
