"""Command-line entry point: argv in, exit code out.

This is the only module that prints errors and chooses exit codes. Commands
live in mlci/commands/<name>.py; each exposes `configure(parser)` and
`run(args, ctx) -> int`. Only the invoked command's module is imported, and
heavy libraries are imported inside `run`, so `mlci --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence

from mlci import __version__
from mlci.context import Context
from mlci.errors import EXIT_CONFIG, ConfigErrors, MlciError

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("mlci.commands.init", "write a starter mlci.yml and .gitlab-ci.yml"),
    "config": ("mlci.commands.config", "show the effective configuration and where each value came from"),
    "generate": ("mlci.commands.generate", "render the GitLab CI templates (ci_templates/, catalog layout)"),
    "lint": ("mlci.commands.lint", "validate a .gitlab-ci.yml against GitLab's schema and ML rules"),
    "local-pipeline": ("mlci.commands.local_pipeline", "run this project's pipeline locally under gitlab-ci-local"),
    "data": ("mlci.commands.data", "data contract checks and drift detection"),
    "train": ("mlci.commands.train", "run a training command inside a tracked MLflow run"),
    "train-select": ("mlci.commands.train_select", "pick the best run of a parallel:matrix sweep"),
    "tune": ("mlci.commands.tune", "tune hyper-parameters: an Optuna study shared by parallel jobs, one run per trial"),
    "optimize": ("mlci.commands.optimize", "export the candidate model to ONNX, quantize, prove parity, measure"),
    "gate": ("mlci.commands.gate", "gate a candidate model against thresholds and the champion"),
    "report": ("mlci.commands.report", "post the merge-request model report, or write a model card"),
    "deploy": ("mlci.commands.deploy", "promote a blessed model version to an environment"),
    "smoke-test": ("mlci.commands.smoke_test", "call a served model and check answers and latency"),
    "rollback": ("mlci.commands.rollback", "re-point an environment to an earlier model version"),
    "undeploy": ("mlci.commands.undeploy", "stop the local model server mlci started for an environment"),
    "schedule": ("mlci.commands.schedule", "keep GitLab pipeline schedules in sync with mlci.yml"),
    "trigger": ("mlci.commands.trigger", "start a retraining pipeline through the GitLab API"),
    "retrain": ("mlci.commands.retrain", "decide whether to retrain, and conclude a retraining run"),
    "hook": ("mlci.commands.hook", "run a user hook command (e.g. fetch-data) with mlci's environment"),
    "runners": ("mlci.commands.runners", "render the GPU runner fleet (Helm, OpenTofu, Ansible) from mlci.yml"),
    "monitor": ("mlci.commands.monitor", "judge a deployment from Prometheus and its logged requests; roll back "
                "or retrain"),
    "canary": ("mlci.commands.canary", "canary and A/B releases: split traffic, test significance, promote or abort"),
}


# Global options that take a value: the token after one is its value, never the command.
GLOBAL_VALUE_OPTIONS = ("-c", "--config", "--out-dir", "--set")


def _selected_command(argv: Sequence[str]) -> str | None:
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            return None
        if token in GLOBAL_VALUE_OPTIONS:
            next(tokens, None)
        elif not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlci",
        description="GitLab CI/CD for machine learning. Exit codes: 0 ok, 1 check or gate failed, "
        "2 usage or config error, 3 external service error.",
    )
    parser.add_argument("--version", action="version", version=f"mlci {__version__}")
    parser.add_argument(
        "-c", "--config", metavar="FILE",
        help="project config (default: $MLCI_CONFIG or ./mlci.yml)",
    )
    parser.add_argument(
        "--out-dir", metavar="DIR",
        help="where reports and artifacts are written (default: $MLCI_OUT_DIR or ./mlci-out)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set gate.on-no-champion=fail (highest precedence)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    selected = _selected_command(argv)
    # With a command named, only its parser is built: two dozen sub-parsers cost more than linting a file.
    for name in [selected] if selected else COMMANDS:
        module_name, help_text = COMMANDS[name]
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            importlib.import_module(module_name).configure(sub)
            sub.set_defaults(_module=module_name)
            parser.set_defaults(_command_parser=sub)
    return parser


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Option strings that take a value, across the parser and its sub-commands."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _value_options(sub)
        elif action.option_strings and action.nargs != 0:
            found.update(action.option_strings)
    return found


def drop_empty_option_values(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--flag ""` and `--flag=` mean "flag not given".

    CI templates pass `--flag "$MLCI_SOME_INPUT"` unconditionally (job scripts
    hold no shell logic); an empty variable must fall back to mlci.yml, not
    become an empty path or version.
    """
    options = _value_options(parser)
    kept: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            kept.extend(argv[index:])
            break
        name, equals, value = token.partition("=")
        if token.startswith("--") and equals and value == "" and name in options:
            index += 1
            continue
        if token in options and index + 1 < len(argv) and argv[index + 1] == "":
            index += 2
            continue
        kept.append(token)
        index += 1
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with redacted_std_streams():  # argparse echoes values in its errors too
        parser = build_parser(argv)
        argv = drop_empty_option_values(argv, parser)
        try:
            args, unknown = parser.parse_known_args(argv)
            if unknown:
                # `mlci lint --bogus` shows lint's usage, not the top-level one.
                owner = getattr(args, "_command_parser", None) or parser
                owner.error(f"unrecognized arguments: {' '.join(unknown)}")
        except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
            return int(exc.code or 0)
        if not args.command:
            parser.print_help()
            return EXIT_CONFIG
        return _run_command(args)


@contextlib.contextmanager
def redacted_std_streams():
    """Every byte this process prints passes mlci's redaction, also what libraries log and tracebacks."""
    from mlci.redact import RedactingTextStream

    saved = sys.stdout, sys.stderr
    sys.stdout = RedactingTextStream(saved[0])
    sys.stderr = RedactingTextStream(saved[1])
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = saved


def _run_command(args) -> int:
    ctx = Context.from_args(args)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args, ctx) or 0)
    except ConfigErrors as exc:
        for err in exc.errors:
            ctx.error(err.message)
        ctx.error(f"{len(exc.errors)} configuration error(s)")
        return exc.exit_code
    except MlciError as exc:
        ctx.error(exc.message)
        if exc.hint:
            ctx.error(f"hint: {exc.hint}")
        return exc.exit_code
    except ModuleNotFoundError as exc:
        from mlci.extras import command_key, missing_extra

        explained = missing_extra(exc, command_key(args))
        if explained is None:
            raise
        ctx.error(explained.message)
        ctx.error(f"hint: {explained.hint}")
        return explained.exit_code
    except KeyboardInterrupt:
        ctx.error("interrupted")
        return 130
    except BrokenPipeError:
        # `mlci config show | head`: the reader left; that's not an error.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        # A bug. The traceback goes through the redacting stderr, never raw.
        import traceback

        ctx.error(f"internal error ({type(exc).__name__}); please report it with the traceback below")
        traceback.print_exc(file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
