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
    from mlci.deploy.step import deploy_to

    config = ctx.config()
    if not (args.version or "").strip() and not ctx.env.get("MLCI_MODEL_VERSION", "").strip():
        _refuse_after_failed_gate(ctx, config, args.to)
    deploy_to(ctx, config, environment=args.to, version=args.version)
    return 0


def _refuse_after_failed_gate(ctx, config, environment: str) -> None:
    """A deploy without a version right after a red gate would ship the previous model unnoticed."""
    from mlci.deploy import wiring
    from mlci.deploy.promotion import PromotionRefused
    from mlci.outputs import write_json

    model = wiring.model_name(config)
    try:
        wiring.refuse_after_failed_gate(ctx.out_dir, model)
    except PromotionRefused as exc:
        write_json(ctx.out_path(f"deploy-{environment}.json"),
                   wiring.refused_log("deploy", model, environment, exc.message, wiring.ci_env(ctx)))
        raise
