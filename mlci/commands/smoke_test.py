"""`mlci smoke-test [--url URL | --env ENV]`: call the served model and check answers and latency."""

from __future__ import annotations

import re


def configure(parser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="model server base URL (serves /ping and /invocations)")
    where.add_argument(
        "--env", metavar="ENV",
        help="environment to test: its configured url, else the server mlci deploy started, else $MLCI_DEPLOY_URL",
    )
    parser.add_argument("--name", metavar="ENV", help="environment name for the artifacts when testing a --url")
    parser.add_argument("--payload", metavar="FILE", help="JSON request body posted as-is to /invocations")
    parser.add_argument("--data", metavar="FILE", help="CSV/Parquet/JSON-lines file; the first --rows rows are sent")
    parser.add_argument("--rows", type=int, metavar="N", help="rows taken from --data (default 5)")
    parser.add_argument("--requests", type=int, metavar="N", help="requests for the latency measurement (default 20)")
    parser.add_argument(
        "--p95-budget-ms", type=float, metavar="X", help="largest acceptable p95 latency (default 1000)"
    )
    parser.add_argument("--p50-budget-ms", type=float, metavar="X", help="largest acceptable median latency")
    parser.add_argument("--expect", metavar="FILE", help="JSON file with the expected predictions")
    parser.add_argument("--wait", type=float, metavar="S", help="seconds to wait for /ping (default 120)")


def _resolve_url(args, ctx, settings) -> tuple[str, str]:
    """(base URL, environment name for the artifacts)."""
    from mlci.deploy.serve import is_running, read_state
    from mlci.errors import UsageError

    deployed_url = ctx.env.get("MLCI_DEPLOY_URL", "").strip()
    deployed_env = ctx.env.get("MLCI_ENVIRONMENT", "").strip()
    if args.url:
        return args.url, args.name or deployed_env or "adhoc"
    if args.env:
        environment = settings.get(args.env)
        if environment.url:
            return environment.url, args.env
        if environment.target in ("mlflow-serve", "mlserver"):
            state = read_state(settings.state_dir, args.env)
            if state is not None:
                if not is_running(state):
                    ctx.warn(f"the model server that `mlci deploy --to {args.env}` started (pid {state.pid}, "
                             f"{state.url}) is no longer running; run `mlci deploy --to {args.env}` again "
                             "to restart it")
                return state.url, args.env
        if deployed_url and deployed_env in ("", args.env):
            return deployed_url, args.env
        raise UsageError(
            f"no URL for environment '{args.env}': no url in mlci.yml, no server recorded by mlci deploy, "
            "and no MLCI_DEPLOY_URL",
            hint="let the smoke-test job `needs:` the deploy job (its dotenv passes MLCI_DEPLOY_URL), or pass --url",
        )
    if deployed_url:
        return deployed_url, args.name or deployed_env or "adhoc"
    raise UsageError("smoke-test needs --url URL or --env ENV (or MLCI_DEPLOY_URL from a deploy job's dotenv)")


def _served(args, ctx, settings) -> dict | None:
    """Which model the tested server runs (artifact and URI), as the deploy recorded it."""
    from mlci.deploy.serve import read_state

    if args.env:
        environment = settings.get(args.env)
        if environment.target == "mlflow-serve" and not environment.url:
            state = read_state(settings.state_dir, args.env)
            if state is not None:
                return {"artifact": state.artifact, "model-uri": state.model_uri, "version": state.model_version}
    if ctx.env.get("MLCI_MODEL_ARTIFACT") and ctx.env.get("MLCI_ENVIRONMENT", "") in ("", args.env or args.name or ""):
        return {"artifact": ctx.env["MLCI_MODEL_ARTIFACT"], "model-uri": ctx.env.get("MLCI_SERVED_MODEL_URI", ""),
                "version": ctx.env.get("MLCI_MODEL_VERSION", "")}
    return None


def _deployed_version(args, ctx, settings, registry, model) -> str | None:
    """Which version the environment runs: the started server, the deploy job's dotenv, else its marker."""
    from mlci.deploy.serve import read_state

    environment = settings.get(args.env)
    if environment.target in ("mlflow-serve", "mlserver") and not environment.url:
        state = read_state(settings.state_dir, args.env)
        if state is not None:
            return state.model_version
    if ctx.env.get("MLCI_MODEL_VERSION") and ctx.env.get("MLCI_ENVIRONMENT", "") in ("", args.env):
        return ctx.env["MLCI_MODEL_VERSION"]
    holder = registry.get_marker(model, args.env)
    return holder.version if holder else None


def _example_from_registry(args, ctx, settings):
    """(payload, source) from the serving input example MLflow stored with the deployed version."""
    from mlci.deploy import probe, wiring

    if not args.env:
        return None, ""
    config = ctx.config()
    model = wiring.model_name(config)
    registry = wiring.registry_for(config, wiring.ci_env(ctx))
    version = _deployed_version(args, ctx, settings, registry, model)
    if version is None:
        return None, ""
    payload = probe.model_input_example(registry, model, version)
    return payload, f"{probe.SERVING_EXAMPLE} of models:/{model}/{version}"


def run(args, ctx) -> int:
    from pathlib import Path

    from mlci.deploy import probe, smoke
    from mlci.deploy.settings import load_settings, smoke_defaults
    from mlci.errors import CheckFailed, ConfigError, ExternalServiceError, UsageError
    from mlci.outputs import write_json
    from mlci.outputs.junit import write_junit

    settings = load_settings(ctx.config())
    if args.env and settings.get(args.env) is None:
        raise UsageError(f"unknown environment '{args.env}'; configured environments: {', '.join(settings.names)}")
    url, env_name = _resolve_url(args, ctx, settings)
    url = url.rstrip("/")
    env_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", env_name) or "adhoc"
    configured = settings.get(args.env).smoke if args.env else smoke_defaults()

    def pick(flag, key):
        return flag if flag is not None else configured.get(key)

    def config_path(key):
        value = configured.get(key)
        return None if value is None else settings.base_dir / value

    rows = pick(args.rows, "rows")
    requests = pick(args.requests, "requests")
    if rows < 1 or requests < 1:
        raise UsageError("--rows and --requests must be at least 1")
    # Flags beat mlci.yml; a payload beats data rows.
    payload_file = Path(args.payload) if args.payload else None if args.data else config_path("payload")
    data_file = Path(args.data) if args.data else None if args.payload else config_path("data")
    if payload_file is not None:
        payload, source = probe.load_json_file(payload_file, "smoke-test payload"), str(payload_file)
    elif data_file is not None:
        payload = probe.rows_payload(data_file, rows=rows, drop_columns=configured["drop-columns"])
        source = str(data_file)
    else:
        payload, source = _example_from_registry(args, ctx, settings)
        if payload is None:
            raise ConfigError(
                "the smoke test has nothing to send: no --payload or --data, no smoke.payload or smoke.data "
                f"for environment '{env_name}' in mlci.yml, and no serving input example stored with the model",
                hint="point deploy.environments[].smoke.data at a few rows of your data (labels in drop-columns), "
                "or log the model with an input_example",
            )
    expect_path = Path(args.expect) if args.expect else config_path("expect")
    expected = probe.load_expected(expect_path) if expect_path else None

    json_path = ctx.out_path(f"smoke-{env_name}.json")
    junit_path = ctx.out_path(f"smoke-{env_name}.junit.xml")
    try:
        ready_after = probe.wait_for_ping(url, wait=pick(args.wait, "wait"), on_wait=ctx.info)
    except ExternalServiceError as exc:
        unreachable = smoke.SmokeResult(
            url=url, environment=env_name, latency={}, requests=0,
            checks=[smoke.SmokeCheck("ping", False, exc.message)],
        )
        write_json(json_path, smoke.to_json(unreachable, payload_source=source))
        write_junit(junit_path, [smoke.to_junit(unreachable)])
        raise
    served = _served(args, ctx, settings)
    if served:
        ctx.info(f"{env_name} serves the {served['artifact']} model of version {served['version']} "
                 f"({served['model-uri']})")
    from mlci.durations import format_duration

    ctx.info(f"{url}/ping answered after {format_duration(ready_after)}; sending {requests} requests from {source}")
    observations = probe.post_invocations(url, payload, count=requests, timeout=float(configured["request-timeout"]))
    result = smoke.evaluate(
        observations,
        url=url,
        environment=env_name,
        expected_rows=smoke.payload_rows(payload),
        expected_predictions=expected,
        tolerance=float(configured["tolerance"]),
        p95_budget_ms=pick(args.p95_budget_ms, "p95-budget-ms"),
        p50_budget_ms=pick(args.p50_budget_ms, "p50-budget-ms"),
    )
    result.checks.insert(0, smoke.SmokeCheck("ping", True, f"/ping answered 200 after {ready_after:.1f} s"))
    write_json(json_path, {**smoke.to_json(result, payload_source=source), **({"served": served} if served else {})})
    write_junit(junit_path, [smoke.to_junit(result)])
    for check in result.checks:
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}[check.passed]
        ctx.info(f"{mark} {check.name}: {check.message}")
    if not result.passed:
        failed = ", ".join(check.name for check in result.failures)
        raise CheckFailed(f"smoke test of {url} failed: {failed}", hint=f"details in {json_path}")
    ctx.info(f"smoke test of '{env_name}' passed ({url})")
    return 0
