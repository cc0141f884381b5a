"""`mlci local-pipeline [--job NAME]... [--source S] [--variable K=V]... [--manual NAME]... [--list] [--dry-run]`

Runs the project's own .gitlab-ci.yml under gitlab-ci-local: shell executor, each job isolated in its own
copy of the tracked files, the repository's default branch, and the mlci running this command in every job.
Nothing in the project is edited. Exit code: gitlab-ci-local's (non-zero when a job failed); 2 when the tool,
git or the CI file is missing.
"""

from __future__ import annotations


def configure(parser) -> None:
    from mlci.localrun import SOURCES

    parser.add_argument("--job", dest="jobs", action="append", default=[], metavar="NAME",
                        help="run only this job and the jobs it needs (repeatable; default: the whole pipeline)")
    parser.add_argument("--source", choices=SOURCES, default="push",
                        help="the event the pipeline runs for, CI_PIPELINE_SOURCE (default: push)")
    parser.add_argument("--variable", dest="variables", action="append", default=[], metavar="KEY=VALUE",
                        help="a CI/CD variable for every job (repeatable; wins over what mlci sets)")
    parser.add_argument("--manual", action="append", default=[], metavar="NAME",
                        help="also run this manual job, e.g. a production deploy (repeatable)")
    parser.add_argument("--default-branch", metavar="BRANCH",
                        help="CI_DEFAULT_BRANCH (default: origin/HEAD, else main or master, else the current branch)")
    parser.add_argument("--file", metavar="FILE", help="the CI file (default: .gitlab-ci.yml)")
    parser.add_argument("--list", action="store_true",
                        help="list the jobs this pipeline would run (stage, when, needs) instead of running them")
    parser.add_argument("--dry-run", action="store_true", help="print the gitlab-ci-local command and exit")


def _running_mlci_dir(env: dict[str, str]) -> str | None:
    """The bin directory of the mlci running now, when `mlci` on PATH is not this very one."""
    import shutil
    import sys
    from pathlib import Path

    here = Path(sys.executable).parent / "mlci"
    if not here.is_file():
        return None
    on_path = shutil.which("mlci", path=env.get("PATH", ""))
    if on_path and Path(on_path).resolve() == here.resolve():
        return None
    return str(here.parent)


def _shared_deploy_state_dir(ctx, cwd) -> str | None:
    """deploy.state-dir by its absolute path, when it is relative (the default is .mlci/serve)."""
    from pathlib import Path

    from mlci.errors import ConfigError

    if "MLCI_DEPLOY_STATE_DIR" in ctx.env:
        return None
    try:
        value = ctx.config().get("deploy", "state-dir") or ".mlci/serve"
    except ConfigError:
        return None  # the pipeline's own jobs report a broken mlci.yml, with its locations
    return None if Path(value).is_absolute() else str(cwd / value)


def run(args, ctx) -> int:
    import shlex
    from pathlib import Path

    from mlci.adapters import gitlab_ci_local as tool
    from mlci.errors import UsageError
    from mlci.localrun import GITLAB_CI_LOCAL_VERSION, LocalRun, build_command, default_branch, parse_variable

    cwd = Path.cwd()
    ci_file = args.file or ".gitlab-ci.yml"
    if not (cwd / ci_file).is_file():
        raise UsageError(f"{ci_file}: no such file in {cwd}", hint="run mlci local-pipeline in the project's root, "
                         "or create the pipeline with `mlci init`")
    git = tool.git_facts(cwd)
    request = LocalRun(
        source=args.source, jobs=tuple(args.jobs), manual=tuple(args.manual),
        variables=tuple(parse_variable(text) for text in args.variables),
        default_branch=args.default_branch, file=args.file,
        mlci_bin_dir=_running_mlci_dir(ctx.env), path=ctx.env.get("PATH", ""),
        deploy_state_dir=_shared_deploy_state_dir(ctx, cwd),
        tracking_uri=ctx.env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{cwd / '.mlci' / 'mlflow.db'}",
    )
    found = tool.find_tool(cwd, ctx.env)
    if found is None and not args.dry_run:
        raise tool.missing_tool_error(ctx.env)
    cmd = build_command(found or ["gitlab-ci-local"], request, git)
    if args.list:
        cmd.append("--list")
    if args.dry_run:
        ctx.info(shlex.join(cmd))
        return 0

    version = tool.tool_version(found)
    if version and version != GITLAB_CI_LOCAL_VERSION:
        ctx.warn(f"gitlab-ci-local {version} found; mlci is tested with {GITLAB_CI_LOCAL_VERSION}")
    untracked = tool.untracked_files(cwd)
    if untracked and not args.list:
        shown = ", ".join(untracked[:5]) + (f" and {len(untracked) - 5} more" if len(untracked) > 5 else "")
        ctx.warn(f"not copied into the jobs (untracked; `git add` them to include them): {shown}")
    branch = request.default_branch or default_branch(git)
    where = f"branch {git.current_branch}" if git.current_branch else "a detached HEAD"
    ctx.info(f"mlci: {'listing' if args.list else 'running'} {ci_file} as a {args.source} pipeline on {where} "
             f"(default branch {branch}) with gitlab-ci-local {version or '?'}: shell executor, jobs isolated")
    code = tool.run(cmd, cwd, ctx.env)
    if code != 0:
        ctx.error(f"the pipeline failed (gitlab-ci-local exit {code}); job logs are in .gitlab-ci-local/output/")
    return code
