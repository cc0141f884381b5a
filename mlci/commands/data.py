"""`mlci data check` (contracts) and `mlci data drift` (reference vs current).

Thin glue: config and flags in, mlci.data does the work, artifacts out.
polars, numpy, scipy, matplotlib and mlflow are imported only by the
subcommand that needs them.
"""

from __future__ import annotations

from mlci.errors import CheckFailed, UsageError

FORMATS = ("parquet", "csv", "ndjson", "delta", "iceberg")
ENGINES = ("polars", "duckdb", "spark", "sql")


def _engine_flags(parser) -> None:
    parser.add_argument("--engine", choices=ENGINES,
                        help="where the checks run (default: each source's engine, else polars)")
    parser.add_argument("--connection", metavar="VARIABLE",
                        help="name of the environment variable (a masked CI/CD variable) holding the engine's "
                        "connection string; never the string itself")


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    check = sub.add_parser(
        "check", help="check data files against their contracts",
        description="Check data files against contracts (one fused polars query per file). "
        "Writes data-check.junit.xml, data-check.json and data-check.md. "
        "Exit 1 when an error-severity rule fails, 2 on a bad contract or unreadable data file.",
    )
    check.add_argument("paths", nargs="*", metavar="SOURCE",
                       help="data files, globs, folders, s3://|gs://|az:// URLs, delta:LOCATION[@vN] or "
                       "iceberg:[CATALOG/]NAMESPACE.TABLE[@SNAPSHOT] (default: every data.sources entry in mlci.yml)")
    check.add_argument("--contract", metavar="FILE",
                       help="contract YAML file to check PATHs against (default: the matching data.sources entry)")
    check.add_argument("--format", choices=FORMATS, help="file format (default: from the extension)")
    _engine_flags(check)
    check.add_argument("--warn-only", action="store_true",
                       help="report error-severity failures but exit 0")

    drift = sub.add_parser(
        "drift", help="compare current data with a reference (PSI, KS, chi-square)",
        description="Compare current data with a reference dataset, column by column. Writes drift.junit.xml, "
        "drift.json, drift.md, drift.env (MLCI_DRIFT=true|false) and drift-plots/<column>.png. "
        "Exit 0 whether or not drift is found, unless --fail-on-drift.",
    )
    drift.add_argument("current", nargs="*", metavar="CURRENT",
                       help="current data files or globs, each compared as one dataset "
                       "(default: data.drift.current, else every data.sources path)")
    drift.add_argument("--reference", metavar="REF",
                       help="reference file or glob, or 'champion' for the training-data snapshot of the champion "
                       "model's run (default: data.drift.reference)")
    drift.add_argument("--format", choices=FORMATS, help="file format (default: from the extension)")
    _engine_flags(drift)
    drift.add_argument("--fail-on-drift", action="store_true", default=None,
                       help="exit 1 when any column drifts (default: data.drift.fail-on-drift, false)")
    drift.add_argument("--columns", metavar="A,B", help="only compare these columns (comma-separated)")
    drift.add_argument("--exclude", metavar="A,B", help="never compare these columns (comma-separated)")
    drift.add_argument("--no-plots", action="store_true", help="do not draw drift-plots/*.png")
    parser.set_defaults(_data_parser=parser)


def run(args, ctx) -> int:
    if args.data_command == "check":
        return _check(args, ctx)
    if args.data_command == "drift":
        return _drift(args, ctx)
    args._data_parser.print_help(ctx.stderr)
    raise UsageError("choose a subcommand: mlci data check | mlci data drift")


def _check(args, ctx) -> int:
    from mlci.adapters.sql_engines import EnginePool
    from mlci.data.check import check_file
    from mlci.data.report import CheckSummary, to_json, to_junit, to_markdown, to_terminal
    from mlci.data.sources import check_targets
    from mlci.outputs import write_json
    from mlci.outputs.atomic import atomic_write
    from mlci.outputs.junit import write_junit

    if args.contract and args.paths and ctx.config_path is None:
        config = _NoConfig()  # files and contract are all on the command line: mlci.yml has nothing to add
    else:
        config = ctx.config()
    targets = check_targets(config, list(args.paths), contract_file=args.contract or None, fmt=args.format,
                            engine=args.engine, connection=args.connection or None)
    with EnginePool(ctx.env) as engines:
        summary = CheckSummary(files=[check_file(target, engines=engines) for target in targets])

    write_junit(ctx.out_path("data-check.junit.xml"), to_junit(summary))
    write_json(ctx.out_path("data-check.json"), to_json(summary))
    atomic_write(ctx.out_path("data-check.md"), to_markdown(summary))
    ctx.info(to_terminal(summary))

    failed = summary.counts()["failed"]
    if failed and not args.warn_only:
        raise CheckFailed(f"{failed} error-severity data rule(s) failed; see {ctx.out_path('data-check.md')}")
    return 0


class _NoConfig:
    """Stands in for the project config when a command needs nothing from it."""

    path = None

    def get(self, *path, default=None):
        return default

    def where(self, path, *, key=False) -> str:
        return "mlci.yml"


def _split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def _drift(args, ctx) -> int:
    import tempfile
    from pathlib import Path

    from mlci.data import drift_report as render
    from mlci.data.drift import compare, settings_from_config
    from mlci.data.reference import CHAMPION, champion_snapshot, pair
    from mlci.data.sources import configured_sources, expand, load_frame

    config = ctx.config()
    drift_cfg = config.get("data", "drift") or {}
    base = config.path.parent if config.path else Path(".")
    reference = args.reference or drift_cfg.get("reference")
    if not reference:
        raise UsageError("no reference data: pass --reference PATH|champion or set data.drift.reference")
    sources = configured_sources(config)
    engine = args.engine or drift_cfg.get("engine") or (sources[0].engine if sources else "polars")
    connection = args.connection or drift_cfg.get("connection") or next(
        (s.connection for s in sources if s.engine == engine and s.connection), None)
    if args.current:
        currents = [(pattern, None) for pattern in args.current]
    elif drift_cfg.get("current"):
        currents = [(pattern, config.where(("data", "drift", "current"))) for pattern in drift_cfg["current"]]
    else:
        currents = [(source.path, source.where) for source in sources if engine != "polars" or not source.table]
    if not currents:
        raise UsageError("no current data: pass CURRENT paths, or set data.drift.current or data.sources")
    settings = settings_from_config(drift_cfg, columns=_split_names(args.columns), exclude=_split_names(args.exclude))
    fmt = args.format or drift_cfg.get("format")
    fail_on_drift = drift_cfg.get("fail-on-drift", False) if args.fail_on_drift is None else args.fail_on_drift
    wanted = {"columns": settings.columns, "exclude": settings.exclude}  # read only what is compared

    if engine != "polars":
        if reference == CHAMPION:
            raise UsageError("--reference champion compares against the logged training-data snapshot, which only "
                             "the polars engine reads", hint="pass the reference as a source (a pinned table "
                             "version such as delta:s3://lake/orders@v12, or a table name) for this engine")
        summary = _drift_in_engine(args, config, base, engine, connection, reference, currents, settings, fmt)
        return _drift_outputs(args, ctx, summary, fail_on_drift)

    with tempfile.TemporaryDirectory(prefix="mlci-drift-") as scratch:
        snapshot = None
        if reference == CHAMPION:
            artifact_path = drift_cfg.get("snapshot-path", "mlci-data")
            snapshot = champion_snapshot(config, Path(scratch), artifact_path=artifact_path)
            summary = render.DriftSummary(reference=snapshot.label, datasets=[],
                                          reference_unavailable=snapshot.unavailable)
        else:
            ref_files = expand(reference, base=Path(".") if args.reference else base,
                               location=None if args.reference else config.where(("data", "drift", "reference")))
            ref_frame = load_frame(ref_files, fmt, **wanted)
            summary = render.DriftSummary(reference=reference, datasets=[])
        if not summary.reference_unavailable:
            current_base = Path(".") if args.current else base
            resolved = [(pattern, expand(pattern, location=where, base=current_base)) for pattern, where in currents]
            for pattern, files in resolved:
                if snapshot is not None:
                    ref_files = pair(snapshot, files, base)
                    ref_frame = load_frame(ref_files, None, **wanted)
                label = pattern if len(files) > 1 else str(files[0])
                summary.datasets.append(compare(ref_frame, load_frame(files, fmt, **wanted), settings, label=label,
                                                reference_label=snapshot.label if snapshot else reference))

    return _drift_outputs(args, ctx, summary, fail_on_drift)


def _drift_in_engine(args, config, base, engine, connection, reference, currents, settings, fmt):
    """Drift on DuckDB, Spark or a SQL warehouse: the statistics are aggregates computed where the data lives."""
    from pathlib import Path

    from mlci.adapters.sql_engines import EnginePool
    from mlci.data import drift_report as render
    from mlci.data.engine_check import dataset_for_engine, drift_with_engine

    ref_base = Path(".") if args.reference else base
    ref_where = None if args.reference else config.where(("data", "drift", "reference"))
    summary = render.DriftSummary(reference=reference, datasets=[])
    with EnginePool() as pool:
        ref = dataset_for_engine(reference, engine, connection, fmt, base=ref_base, where=ref_where)
        for pattern, where in currents:
            current = dataset_for_engine(pattern, engine, connection, fmt, base=Path(".") if args.current else base,
                                         where=where)
            summary.datasets.append(drift_with_engine(pool, ref, current, settings, label=pattern,
                                                      reference_label=reference))
    return summary


def _drift_outputs(args, ctx, summary, fail_on_drift: bool) -> int:
    from mlci.data import drift_report as render
    from mlci.outputs import write_json
    from mlci.outputs.atomic import atomic_write
    from mlci.outputs.dotenv import write_dotenv
    from mlci.outputs.junit import write_junit

    if not args.no_plots:
        several = len(summary.datasets) > 1
        for dataset in summary.datasets:
            for column in dataset.columns:
                if column.drifted and (column.samples is not None or column.histogram is not None):
                    name = render.plot_name(column.column, dataset.label if several else None)
                    atomic_write(ctx.out_path("drift-plots") / name, render.render_plot(column))
                    column.plot = f"drift-plots/{name}"

    write_junit(ctx.out_path("drift.junit.xml"), render.to_junit(summary))
    write_json(ctx.out_path("drift.json"), render.to_json(summary))
    atomic_write(ctx.out_path("drift.md"), render.to_markdown(summary))
    write_dotenv(ctx.out_path("drift.env"), {"MLCI_DRIFT": summary.drifted})
    if summary.reference_unavailable:
        ctx.warn(f"drift not measured: {summary.reference_unavailable}")
    else:
        ctx.info(render.to_terminal(summary))
    if summary.drifted and fail_on_drift:
        raise CheckFailed(f"drift in {', '.join(summary.drifting_columns())} (--fail-on-drift)")
    return 0
