"""`mlci rollback --env ENV [--to V] [--reason TEXT]`: re-point an environment to an earlier version."""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("--env", required=True, metavar="ENV", help="environment to roll back")
    parser.add_argument(
        "--to", metavar="V",
        help="exact version to return to; it must have held the environment's marker before "
        "(default: $MLCI_ROLLBACK_TO, else the previous holder recorded in the audit trail; empty means unset)",
    )
    parser.add_argument(
        "--reason", metavar="TEXT", help="why (default: $MLCI_ROLLBACK_REASON); kept in the audit trail"
    )


def run(args, ctx) -> int:
    from mlci.deploy import wiring
    from mlci.deploy.flow import DeployFailed, rollback
    from mlci.deploy.promotion import PromotionRefused
    from mlci.deploy.settings import load_settings
    from mlci.outputs import write_json

    config = ctx.config()
    settings = load_settings(config)
    model = wiring.model_name(config)
    ci = wiring.ci_env(ctx)
    # The template passes --to "$MLCI_ROLLBACK_TO", which is empty unless set in the manual job's form.
    to = (args.to or ctx.env.get("MLCI_ROLLBACK_TO") or "").strip() or None
    reason = (args.reason or ctx.env.get("MLCI_ROLLBACK_REASON") or "").strip() or "(no reason given)"
    log_path = ctx.out_path(f"rollback-{args.env}.json")
    registry = wiring.registry_for(config, ci)
    try:
        outcome = rollback(
            registry, settings, model=model, env=args.env, to=to, reason=reason,
            runtime=wiring.runtime(ctx, config, ci),
        )
    except PromotionRefused as exc:
        write_json(log_path, {**wiring.refused_log("rollback", model, args.env, exc.message, ci), "reason": reason})
        raise
    except DeployFailed as exc:
        write_json(log_path, exc.outcome.to_json())
        ctx.error(f"rollback target failed; the '{args.env}' marker stays on version {exc.outcome.from_version}")
        raise
    write_json(log_path, outcome.to_json())
    ctx.info(f"{outcome.details.get('target-summary', '')}")
    ctx.info(
        f"rolled '{outcome.environment}' back from version {outcome.from_version} to {outcome.to_version} "
        f"(chosen by {outcome.details['chosen-by']}); reason: {reason}"
    )
    if outcome.url:
        ctx.info(f"url: {outcome.url}")
    return 0
