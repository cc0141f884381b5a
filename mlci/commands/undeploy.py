"""`mlci undeploy --env ENV`: stop the local model server that `mlci deploy` started for an environment.

Only the mlflow-serve target starts a server on this machine; it is recorded in
<deploy.state-dir>/<ENV>.json, and stopped by PID (after checking the PID is still
that server). The registry is not touched: the environment's marker keeps
recording the version deployed there last. Writes undeploy-ENV.json.
"""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("--env", required=True, metavar="ENV", help="environment whose local server to stop")


def run(args, ctx) -> int:
    from mlci.deploy.serve import is_running, read_state, state_path, stop_server
    from mlci.deploy.settings import load_settings
    from mlci.errors import UsageError
    from mlci.outputs import write_json

    settings = load_settings(ctx.config())
    environment = settings.get(args.env)
    if environment is None:
        raise UsageError(f"unknown environment '{args.env}'; configured environments: {', '.join(settings.names)}")
    if environment.target != "mlflow-serve":
        raise UsageError(
            f"environment '{args.env}' uses target {environment.target}: mlci started no local server for it",
            hint="`mlci undeploy` stops the `mlflow models serve` process of an mlflow-serve environment; "
                 "take the other targets down with their own tools",
        )
    state = read_state(settings.state_dir, args.env)
    record = {"environment": args.env, "target": environment.target, "stopped": False}
    if state is None:
        ctx.info(f"no local server recorded for '{args.env}' in {settings.state_dir}: nothing to stop")
    elif not is_running(state):
        state_path(settings.state_dir, args.env).unlink(missing_ok=True)
        ctx.info(f"the server recorded for '{args.env}' (pid {state.pid}) is no longer running; "
                 "removed its record")
        record.update(pid=state.pid, url=state.url, model_uri=state.model_uri)
    else:
        stop_server(state)
        state_path(settings.state_dir, args.env).unlink(missing_ok=True)
        record.update(stopped=True, pid=state.pid, url=state.url, model_uri=state.model_uri,
                      model_version=state.model_version)
        ctx.info(f"stopped the '{args.env}' server (pid {state.pid}, {state.url}, {state.model_uri})")
    write_json(ctx.out_path(f"undeploy-{args.env}.json"), record)
    return 0
