"""`mlci init [--force]`: write a starter mlci.yml and a .gitlab-ci.yml that includes the templates.

With the default `--include local` it also writes the templates to
ci_templates/ (what `mlci generate` renders), so the pipeline works without
access to another project. Existing files are never overwritten without --force.
"""

from __future__ import annotations


def configure(parser) -> None:
    from mlci.generate.init import INCLUDE_KINDS, InitOptions

    defaults = InitOptions(name="")
    parser.add_argument("--force", action="store_true", help="overwrite files that already exist")
    parser.add_argument("--dir", default=".", metavar="DIR", help="project directory (default: .)")
    parser.add_argument("--name", help="project name (default: $CI_PROJECT_NAME, else the directory name)")
    parser.add_argument("--model", help="registered model name (default: the project name)")
    parser.add_argument("--owner", default="", help="team or person accountable for the model")
    parser.add_argument("--data", default=defaults.data, metavar="PATH",
                        help=f"training data file or glob (default: {defaults.data})")
    parser.add_argument("--train-command", default=defaults.train_command, metavar="CMD",
                        help=f"training command (default: {defaults.train_command!r})")
    parser.add_argument("--metric", default=defaults.metric, help=f"main metric, higher is better (default: "
                        f"{defaults.metric})")
    parser.add_argument("--include", choices=INCLUDE_KINDS, default="local",
                        help="how .gitlab-ci.yml includes the templates: local (copies them to ci_templates/), "
                        "project, or component (default: local)")
    parser.add_argument("--mlci-project", default=defaults.mlci_project, metavar="PATH",
                        help=f"project that hosts the mlci templates, for project/component includes "
                        f"(default: {defaults.mlci_project})")
    parser.add_argument("--gpu-tag", default=defaults.gpu_tag, metavar="TAG",
                        help=f"runner tag of GPU runners (default: {defaults.gpu_tag})")


def run(args, ctx) -> int:
    from pathlib import Path

    from mlci.errors import UsageError
    from mlci.generate import load_manifests, render_templates
    from mlci.generate.init import InitOptions, render_init
    from mlci.outputs import atomic_write

    root = Path(args.dir)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    name = args.name or ctx.env.get("CI_PROJECT_NAME") or root.resolve().name
    options = InitOptions(
        name=name, model=args.model or "", owner=args.owner, data=args.data, train_command=args.train_command,
        metric=args.metric, include=args.include, mlci_project=args.mlci_project, gpu_tag=args.gpu_tag,
    )
    files = {root / file: text for file, text in render_init(options).items()}
    if args.include == "local":
        for file, text in render_templates(load_manifests()).items():
            files[root / "ci_templates" / file] = text

    existing = [path for path, text in files.items()
                if path.exists() and path.read_text(encoding="utf-8", errors="replace") != text]
    if existing and not args.force:
        for path in existing:
            ctx.warn(f"skipped {path}: it exists and differs from what `mlci init` would write now "
                     "(edited, or other answers this time); it is kept")
        raise UsageError(
            "refusing to overwrite " + ", ".join(str(p) for p in existing) + "; nothing was written",
            hint="keep your files, or run `mlci init --force` to replace them",
        )
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding="utf-8", errors="replace") != text:
            atomic_write(path, text)
            ctx.info(f"wrote {path}")
        else:
            ctx.info(f"skipped {path}: already what `mlci init` would write")
    ctx.info("next: set MLFLOW_TRACKING_URI and MLCI_GITLAB_TOKEN as masked CI/CD variables, edit mlci.yml, "
             "then `mlci lint` and push")
    return 0
