"""`mlci hook NAME [-- CMD...]`: run a user hook (retrain.hooks.NAME, e.g. fetch-data).

The command after `--` wins over the configured one, so a template input can
supply it directly. The hook's exit code becomes mlci's exit code.
"""

from __future__ import annotations

import argparse


def configure(parser) -> None:
    parser.add_argument("name", metavar="NAME", help="hook name, e.g. fetch-data (defined under retrain.hooks)")
    parser.add_argument(
        "hook_argv", nargs=argparse.REMAINDER, metavar="-- CMD",
        help="run this command instead of the configured one (argv, no shell)",
    )


def run(args, ctx) -> int:
    from pathlib import Path

    from mlci.durations import format_duration
    from mlci.retrain.hooks import describe, find_hook, hook_environment, run_hook
    from mlci.retrain.settings import Hook, load_settings

    config = ctx.config()
    command = list(args.hook_argv)
    if command and command[0] == "--":
        command = command[1:]
    settings = load_settings(config)
    if command:
        hook = Hook(name=args.name, command=tuple(command))
    else:
        hook = find_hook(config, settings.hooks, args.name)

    base_dir = config.path.parent if config.path else Path.cwd()
    cwd = (base_dir / hook.working_directory) if hook.working_directory else None
    env = hook_environment(ctx.env, config, hook=hook, config_path=config.path, out_dir=ctx.out_dir)
    ctx.info(f"mlci: hook {hook.name}: {describe(hook.command)}")
    result = run_hook(hook, env=env, cwd=cwd, timeout=hook.timeout)
    if result.timed_out:
        ctx.error(f"hook {hook.name} did not finish within {format_duration(hook.timeout)} and was stopped")
    elif result.exit_code != 0:
        ctx.error(f"hook {hook.name} exited with code {result.exit_code}")
    return result.exit_code
