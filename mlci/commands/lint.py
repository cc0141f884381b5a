"""`mlci lint [FILE] [--format text|json|codequality] [--output F] [--server]`

Checks a .gitlab-ci.yml as GitLab builds it (include:local with spec:inputs,
!reference, extends, default) against GitLab's CI schema and mlci's ML rules,
and mlci.yml against its schema and the templates the pipeline includes.
Exit 1 when a finding has error severity, 2 when FILE cannot be read or parsed,
3 when --server cannot reach GitLab.
"""

from __future__ import annotations


def _input(text: str) -> tuple[str, object]:
    import argparse

    from mlci.config.yamlload import safe_load
    from mlci.errors import ConfigError

    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = safe_load(raw, f"--input {name.strip()}") if raw.strip() else raw
    except ConfigError as exc:
        if "invalid YAML" not in exc.message:
            raise argparse.ArgumentTypeError(exc.message) from None
        value = raw  # not YAML: the text itself
    return name.strip(), value


def configure(parser) -> None:
    parser.add_argument("file", nargs="?", default=".gitlab-ci.yml", metavar="FILE",
                        help="CI file to check (default: .gitlab-ci.yml)")
    parser.add_argument("--format", choices=["text", "json", "codequality"], default="text",
                        help="report format; codequality is GitLab's Code Quality JSON (artifacts:reports:codequality)")
    parser.add_argument("--output", metavar="FILE", help="write the report here (a summary still goes to stdout)")
    parser.add_argument("--input", dest="inputs", action="append", default=[], type=_input, metavar="NAME=VALUE",
                        help="an input for FILE's own spec:inputs header (YAML-typed, repeatable)")
    parser.add_argument("--root", metavar="DIR",
                        help="repository root for include:local (default: the nearest parent of FILE with .git)")
    parser.add_argument("--no-config", action="store_true",
                        help="do not check mlci.yml (by default it is checked too: its schema, and that it has what "
                        "the included templates need)")
    parser.add_argument("--server", action="store_true",
                        help="also ask the project's GitLab CI lint API (needs gitlab.url/project and a token)")


def _server_findings(result, ctx):
    import yaml

    from mlci.adapters.gitlab import GitLabClient
    from mlci.lint.findings import Finding
    from mlci.lint.source import Location

    client = GitLabClient.from_config(ctx.config(), ctx.env)
    answer = client.ci_lint(yaml.safe_dump(result.server_content, sort_keys=False))
    where = Location(result.file, 1, 1)
    findings = [Finding.make("server-lint", f"GitLab: {message}", where) for message in answer["errors"]]
    findings += [Finding.make("server-lint", f"GitLab: {message}", where, severity="warning")
                 for message in answer["warnings"]]
    if not answer["valid"] and not answer["errors"]:
        findings.append(Finding.make("server-lint", "GitLab reports the configuration as invalid", where))
    return findings


def _runner_findings(path, args, ctx):
    """Training jobs that no runner pool of mlci.yml serves (and unused pools), when mlci.yml declares pools.

    mlci.yml is --config / MLCI_CONFIG, else the one at the repository root of FILE; --no-config skips this.
    """
    import contextlib
    from pathlib import Path

    from mlci.lint import find_root

    if args.no_config:
        return []
    config_path = ctx.config_path
    if config_path is None:
        config_path = (Path(args.root) if args.root else find_root(path)) / "mlci.yml"
        if not config_path.is_file():
            return []
        with contextlib.suppress(ValueError):  # shown relative to the working directory, like FILE
            config_path = config_path.resolve().relative_to(Path.cwd().resolve())
    from mlci.config import load_effective

    config = load_effective(config_path, env=ctx.env)
    if not config.get("runners", default=None):
        return []  # most projects declare no pools: the runner model stays unimported
    from mlci.lint.resolve import load_pipeline
    from mlci.runners.crosscheck import crosscheck, jobs_from_pipeline
    from mlci.runners.model import load_fleet

    fleet = load_fleet(config)
    if not fleet.pools:
        return []
    root = Path(args.root) if args.root else find_root(path)
    jobs = jobs_from_pipeline(load_pipeline(path, root=root, inputs=dict(args.inputs)), root=root)
    return crosscheck(fleet, jobs, lambda p: config.where(p, key=True)).findings


def run(args, ctx) -> int:
    from pathlib import Path

    from mlci.lint import lint_file
    from mlci.lint.output import FORMATS, as_text, summary

    path = Path(args.file)
    result = lint_file(path, root=Path(args.root) if args.root else None, inputs=dict(args.inputs),
                       config=ctx.config_path, check_config=not args.no_config)
    runner_findings = _runner_findings(path, args, ctx)
    if runner_findings:
        result.findings = sorted(result.findings + runner_findings, key=lambda f: f.sort_key())
    if args.server:
        result.findings = sorted(result.findings + _server_findings(result, ctx), key=lambda f: f.sort_key())
    report = FORMATS[args.format](result)
    if args.output:
        from mlci.outputs import atomic_write

        atomic_write(args.output, report)
        ctx.info(as_text(result).rstrip("\n"))
        ctx.info(f"report ({args.format}) written to {args.output}")
    elif args.format == "text":
        ctx.info(report.rstrip("\n"))
    else:
        ctx.info(report.rstrip("\n"))
        if not ctx.quiet:
            print(summary(result), file=ctx.stderr)
    return 1 if result.errors else 0
