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

    deploy_to(ctx, ctx.config(), environment=args.to, version=args.version)
    return 0
