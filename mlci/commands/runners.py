"""`mlci runners render [--dir DIR] [--check] [--ci-file FILE]` and `mlci runners plan`.

Renders `runners:` of mlci.yml into the folder the team commits (Helm values,
Kubernetes objects, OpenTofu modules, an Ansible role), after checking the
pools against the pipeline's jobs. Writes the plan (pools, limits, floor
cost) to OUT/runners-plan.json and runners-plan.md for the MR report.
Exit 1 when the cross-check finds an error or, with --check, when the
committed folder is stale; 2 for a configuration error.
"""

from __future__ import annotations

from pathlib import Path


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    render = sub.add_parser(
        "render", help="write the runner folder from mlci.yml (or check that it is up to date)",
        description="Render runners: in mlci.yml into Helm values, Kubernetes objects, OpenTofu modules and an "
        "Ansible role, after checking the pools against the pipeline's jobs.",
    )
    render.add_argument("--dir", metavar="DIR", help="the runner folder (default: runners.out-dir, infra/runners)")
    render.add_argument("--check", action="store_true",
                        help="write nothing there; exit 1 when the committed files differ from a fresh render")
    render.add_argument("--ci-file", metavar="FILE", help="pipeline to cross-check (default: runners.ci-file)")
    plan = sub.add_parser("plan", help="print the pools, their limits and monthly floor cost; write nothing")
    plan.add_argument("--ci-file", metavar="FILE", help="pipeline to cross-check (default: runners.ci-file)")
    plan.add_argument("--format", choices=["text", "json"], default="text")


def run(args, ctx) -> int:
    from mlci.errors import UsageError

    if args.action not in ("render", "plan"):
        raise UsageError("usage: mlci runners {render [--dir DIR] [--check] [--ci-file FILE], plan [--format F]}")
    return _render(args, ctx)


def _jobs(ci_file: Path, ctx):
    from mlci.lint import find_root
    from mlci.lint.resolve import load_pipeline
    from mlci.runners.crosscheck import jobs_from_pipeline

    if not ci_file.is_file():
        ctx.warn(f"{ci_file} not found: the pools are not cross-checked against a pipeline, and the request "
                 "limits follow the train template's defaults")
        return None
    root = find_root(ci_file)
    return jobs_from_pipeline(load_pipeline(ci_file, root=root), root=root)


def _finding_line(finding) -> str:
    return f"{finding.file}:{finding.line}:{finding.column}: {finding.severity}: {finding.message} [{finding.rule_id}]"


def _compare(out_dir: Path, files: dict[str, str], previous: list[str]) -> list[str]:
    """Paths (relative to out_dir) that a fresh render would create, change or remove."""
    stale = []
    for name, text in sorted(files.items()):
        path = out_dir / name
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            stale.append(name)
    stale += sorted(name for name in previous if name not in files and (out_dir / name).exists())
    return stale


def _previous_files(out_dir: Path) -> list[str]:
    import json

    from mlci.runners.plan import PLAN_FILE

    try:
        listed = json.loads((out_dir / PLAN_FILE).read_text(encoding="utf-8")).get("files") or []
    except (OSError, ValueError, AttributeError):
        return []
    # Only plain relative paths below out_dir: a hand-edited plan.json must not point the cleanup elsewhere.
    return [name for name in listed if isinstance(name, str) and name and not Path(name).is_absolute()
            and ".." not in Path(name).parts]


def _render(args, ctx) -> int:
    import json

    from mlci.errors import ConfigError
    from mlci.outputs import atomic_write, write_json
    from mlci.runners import plan as plan_mod
    from mlci.runners.crosscheck import crosscheck
    from mlci.runners.model import load_fleet
    from mlci.runners.render import render_fleet

    config = ctx.config(required=True)
    fleet = load_fleet(config)
    for path, message in fleet.warnings:
        ctx.warn(f"{config.where(path)}: {message}")
    if not fleet.pools:
        ctx.info("runners: in mlci.yml declares no pool; nothing to render")
        return 0
    if not fleet.gitlab_url:
        raise ConfigError(
            "the runners need the GitLab URL they register against",
            location=config.where(("runners",), key=True),
            hint="set runners.gitlab-url or gitlab.url in mlci.yml (CI_SERVER_URL provides it in a pipeline)",
        )
    jobs = _jobs(Path(args.ci_file or fleet.ci_file), ctx)
    check = crosscheck(fleet, jobs, lambda path: config.where(path, key=True))
    rendered = render_fleet(fleet, check)
    for finding in check.findings:
        (ctx.error if finding.severity == "error" else ctx.warn)(_finding_line(finding))

    plan = rendered.plan
    out_dir = Path(getattr(args, "dir", None) or fleet.out_dir)
    files = dict(rendered.files)
    files[plan_mod.PLAN_FILE] = json.dumps({**plan, "files": sorted(files)}, indent=2, ensure_ascii=False) + "\n"
    previous = _previous_files(out_dir)
    stale = _compare(out_dir, files, previous) if args.action == "render" else []

    artifact = {**plan, "findings": plan_mod.findings_entries(check), "directory": str(out_dir),
                "stale_files": stale if getattr(args, "check", False) else []}
    write_json(ctx.out_path(plan_mod.ARTIFACT), artifact)
    atomic_write(ctx.out_path("runners-plan.md"), plan_mod.render_markdown(artifact, stale=artifact["stale_files"]))

    if args.action == "plan":
        ctx.info(json.dumps(artifact, indent=2) if args.format == "json" else plan_mod.render_markdown(artifact))
        return 1 if check.errors else 0
    if check.errors:
        ctx.error(f"{len(check.errors)} error(s): nothing written to {out_dir}/")
        return 1
    if args.check:
        if stale:
            for name in stale:
                ctx.error(f"{out_dir / name} is not what mlci.yml renders")
            ctx.error(f"{out_dir}/ is stale: run `mlci runners render` and commit the result")
            return 1
        ctx.info(f"{out_dir}/ matches mlci.yml ({len(files)} files); {plan_mod.headline(plan)}")
        return 0
    for name in stale:
        if name in files:
            atomic_write(out_dir / name, files[name])
        else:
            (out_dir / name).unlink()
            ctx.info(f"removed {out_dir / name} (no longer rendered)")
    ctx.info(f"wrote {out_dir}/: {len([n for n in stale if n in files])} file(s) changed, "
             f"{len(files) - len([n for n in stale if n in files])} unchanged; {plan_mod.headline(plan)}")
    return 0
