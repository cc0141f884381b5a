"""`mlci report`: the merge-request model report; `mlci report model-card`: a version's model card.

In a merge request pipeline (CI_MERGE_REQUEST_IID set) the report is posted
as ONE note per report key, updated in place, with its plots uploaded to the
GitLab instance. Elsewhere, or with --dry-run, it only writes report.md,
report.html and report-plots/*.png. Exit 3 when GitLab or MLflow fails.
"""

from __future__ import annotations

from pathlib import Path

PLOTS_DIR = "report-plots"


def configure(parser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=["model-card"], metavar="model-card",
        help="write the model card of a registered version instead of the MR report",
    )
    parser.add_argument("--dry-run", action="store_true", help="write report.md/report.html only; post nothing")
    parser.add_argument("--run", metavar="ID", help="candidate run id (default: $MLCI_RUN_ID, then gate.json)")
    parser.add_argument("--key", help="report key: one MR note per key (default: report.key, then the model name)")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument(
        "--version", dest="model_version", metavar="V",
        help="model-card: version number or marker (champion, production, ...); "
        "default $MLCI_MODEL_VERSION, else the version registered in gate.json",
    )
    parser.add_argument("--output", metavar="FILE", help="model-card: where to write it (default: OUT/model-card.md)")
    parser.add_argument(
        "--no-description", action="store_true",
        help="model-card: do not set the card as the version's description in the registry",
    )


def run(args, ctx) -> int:
    from mlci.errors import UsageError

    if args.action == "model-card":
        return _model_card(args, ctx)
    if args.model_version or args.output or args.no_description:
        raise UsageError("--version, --output and --no-description belong to `mlci report model-card`")
    return _report(args, ctx)


def _report(args, ctx) -> int:
    from mlci.adapters.ci_env import read_ci_env
    from mlci.outputs import atomic_write
    from mlci.report import collect, compose, html, markdown, plots

    flags = {("report", "plots"): False} if args.no_plots else None
    config = ctx.config(flags)
    ci = read_ci_env(ctx.env)
    gathered = collect.gather(config, ctx.env, ci, ctx.out_dir, run_id=args.run)
    for warning in gathered.warnings:
        ctx.warn(warning)
    composed = compose.compose(gathered, config, ci, ctx.env)
    report = composed.model

    written: dict[str, Path] = {}
    for spec in composed.plots:
        written[spec.name] = atomic_write(ctx.out_path(f"{PLOTS_DIR}/{spec.name}"), plots.render_png(spec))
    for name, source in composed.copies.items():
        written[name] = atomic_write(ctx.out_path(f"{PLOTS_DIR}/{name}"), source.read_bytes())
    relative = {name: f"{PLOTS_DIR}/{name}" for name in written}
    fold_after = int(config.get("report", "fold-after", default=12))
    atomic_write(ctx.out_path("report.md"), markdown.render_markdown(report, relative, fold_after=fold_after))
    atomic_write(ctx.out_path("report.html"), html.render_html(report, relative))
    ctx.info(f"wrote {ctx.out_path('report.md')}, {ctx.out_path('report.html')} and {len(written)} plot(s)")
    for note in report.notes:
        ctx.info(f"note: {note}")

    if args.dry_run:
        ctx.info("--dry-run: nothing posted to GitLab")
        return 0
    if not ci.is_merge_request:
        ctx.info("not a merge request pipeline (CI_MERGE_REQUEST_IID is unset): nothing posted to GitLab")
        return 0

    from mlci.adapters.gitlab import GitLabClient

    client = GitLabClient.from_config(config, ctx.env)
    key = args.key or config.get("report", "key") or report.header.model_name
    pipeline_id = int(ci.pipeline_id) if ci.pipeline_id.isdigit() else None
    shown = client.find_report_note(ci.mr_iid, key)
    if shown is not None and shown.newer_than(pipeline_id):
        ctx.info(_newer_shown(ci.mr_iid, shown.pipeline_id, pipeline_id))
        return 0
    uploads, uploaded = _upload_plots(client, written, shown.uploads if shown is not None else {})
    body = markdown.render_markdown(report, {name: uploads[digest] for name, digest in _digests(written).items()},
                                    fold_after=fold_after)
    result = client.upsert_mr_note(ci.mr_iid, key, body, pipeline_id=pipeline_id, uploads=uploads)
    if result.action == "newer-shown":
        ctx.info(_newer_shown(ci.mr_iid, result.pipeline_id, pipeline_id))
        return 0
    # report.md now matches what reviewers see in the merge request.
    atomic_write(ctx.out_path("report.md"), body)
    ctx.info(f"merge request !{ci.mr_iid}: report note {result.action} ({result.url}), {len(written)} image(s), "
             f"{uploaded} uploaded")
    return 0


def _newer_shown(mr_iid, shown: int | None, ours: int | None) -> str:
    return (f"merge request !{mr_iid}: the report note already shows pipeline #{shown}, newer than this "
            f"pipeline #{ours}; left as it is")


def _digests(written: dict[str, Path]) -> dict[str, str]:
    import hashlib

    return {name: hashlib.sha256(path.read_bytes()).hexdigest()[:32] for name, path in written.items()}


def _upload_plots(client, written: dict[str, Path], known: dict[str, str]) -> tuple[dict[str, str], int]:
    """Content digest -> URL for every plot; a plot the note already links (same bytes) is not uploaded again."""
    uploads: dict[str, str] = {}
    count = 0
    for name, digest in _digests(written).items():
        if digest in uploads:
            continue
        if digest in known:
            uploads[digest] = known[digest]
            continue
        uploads[digest] = client.upload(written[name]).url
        count += 1
    return uploads, count


def _model_card(args, ctx) -> int:
    from mlci.adapters.ci_env import read_ci_env
    from mlci.adapters.mlflow import Registry
    from mlci.errors import UsageError
    from mlci.outputs import atomic_write
    from mlci.report import card, collect

    version = args.model_version or collect.model_version_of(ctx.env, collect.read_artifacts(ctx.out_dir)[0])
    if not version:
        raise UsageError(
            "mlci report model-card needs --version V (a version number or a marker such as champion)",
            hint="without it, MLCI_MODEL_VERSION from the gate's dotenv is used in a pipeline, and the version "
                 f"registered by the last passing `mlci gate` ({ctx.out_path('gate.json')}) locally",
        )
    config = ctx.config()
    ci = read_ci_env(ctx.env)
    registry = Registry.from_config(config, ci)
    reader = collect.TrackingReader(config.get("mlflow", "tracking-uri") or "sqlite:///.mlci/mlflow.db")
    warnings: list[str] = []
    inputs = collect.gather_card(config, registry, reader, version, ctx.out_dir, warnings)
    for warning in warnings:
        ctx.warn(warning)
    text = card.render_card(inputs)
    output = Path(args.output) if args.output else ctx.out_path("model-card.md")
    atomic_write(output, text)
    ctx.info(f"wrote {output} for {inputs.model_name} version {inputs.version}")
    if not args.no_description:
        where = f" of job {ci.job_url}" if ci.job_url else ""
        registry.set_description(inputs.model_name, inputs.version, card.fit_description(text, where=where))
        ctx.info(f"set the description of {inputs.model_name} version {inputs.version} in the registry")
    return 0
