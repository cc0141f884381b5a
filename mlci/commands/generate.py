"""`mlci generate [--out DIR] [--check] [--catalog DIR]`: render the GitLab CI templates.

Renders ci_templates/mlci-<stage>.yml and mlci-all.yml from the stage
manifests, rewrites the README's template reference between its markers,
and with --catalog also writes the CI/CD catalog layout (DIR/templates/).
--check writes nothing and exits 1 when any of those files differ.
"""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("--out", metavar="DIR", default="ci_templates",
                        help="where the include:local/project templates go (default: ci_templates)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when committed files differ from a fresh render")
    parser.add_argument("--catalog", metavar="DIR",
                        help="also write the CI/CD catalog layout: DIR/templates/<stage>.yml and DIR/README.md")
    parser.add_argument("--catalog-project", metavar="PATH", default="mlci/mlci",
                        help="default project path of the components that all.yml includes (default: mlci/mlci)")
    parser.add_argument("--readme", metavar="FILE",
                        help="README whose template reference (between its markers) is regenerated "
                        "(default: README.md when it has the markers)")


def run(args, ctx) -> int:
    from pathlib import Path

    from mlci.errors import CheckFailed, ConfigError
    from mlci.generate import MarkersMissing, differences, load_manifests, plan, write
    from mlci.generate.readme import BEGIN

    out_dir = Path(args.out)
    catalog_dir = Path(args.catalog) if args.catalog else None
    readme = Path(args.readme or "README.md")
    if args.readme and not readme.exists():
        raise ConfigError("file not found", location=str(readme))
    # A project that only vendors the templates keeps its README as it is.
    use_readme = bool(args.readme) or (readme.exists() and BEGIN in readme.read_text(encoding="utf-8"))
    try:
        files = plan(load_manifests(), out_dir=out_dir, readme=readme if use_readme else None,
                     catalog_dir=catalog_dir, catalog_project=args.catalog_project)
    except MarkersMissing as exc:
        raise ConfigError(str(exc), location=str(readme),
                          hint="add the two marker lines where the template reference belongs") from None

    if args.check:
        owned = [(out_dir, "mlci-*.yml")]
        if catalog_dir is not None:
            owned.append((catalog_dir / "templates", "*.yml"))
        problems = differences(files, stale_dirs=owned)
        for path, detail in problems:
            ctx.info(f"{path}: {detail}" if "\n" not in detail else detail.rstrip("\n"))
        if problems:
            raise CheckFailed(
                f"{len(problems)} generated file(s) differ from a fresh render",
                hint="run `mlci generate" + (f" --catalog {args.catalog}" if args.catalog else "")
                + "` and commit the result",
            )
        ctx.info(f"mlci generate: {len(files)} file(s) up to date")
        return 0

    changed = write(files)
    for path in changed:
        ctx.info(f"wrote {path}")
    ctx.info(f"mlci generate: {len(changed)} of {len(files)} file(s) changed")
    return 0
