"""`mlci train [--no-cache] [--max-runtime S] [--experiment NAME] [--run-name NAME] [-- CMD ARGS...]`

Runs the training command inside an MLflow run, or re-uses an identical
earlier run (same fingerprint) without starting it. Exits with the command's
exit code; 124 when mlci's runaway guard (max-runtime, idle GPU) stopped it.
Writes train.json and train.env.
"""

from __future__ import annotations

import argparse


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def configure(parser) -> None:
    parser.add_argument("--no-cache", action="store_true",
                        help="train even when a FINISHED run with the same fingerprint exists")
    parser.add_argument("--max-runtime", type=_positive_seconds, metavar="SECONDS",
                        help="stop the command after this long (default: train.max-runtime, else CI_JOB_TIMEOUT "
                             "minus a margin); the run is kept as KILLED and mlci exits 124")
    parser.add_argument("--experiment", metavar="NAME",
                        help="MLflow experiment (default: mlflow.experiment, i.e. CI_PROJECT_PATH)")
    parser.add_argument("--run-name", metavar="NAME", help="MLflow run name (default: CI_JOB_NAME)")
    parser.add_argument("--explain-cache", action="store_true",
                        help="print every input of the run-cache key and what differs from the nearest cached run, "
                             "then exit without training")
    # dest must not be "command": the top-level parser keeps the subcommand name there.
    parser.add_argument("train_command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                        help="training command (default: train.command from mlci.yml)")


def stream_writer(stream):
    """Bytes from a child process, written through to `stream` (its binary buffer when it has one)."""
    buffer = getattr(stream, "buffer", None)

    def write(chunk: bytes) -> None:
        if buffer is not None:
            stream.flush()
            buffer.write(chunk)
            buffer.flush()
        else:
            stream.write(chunk.decode("utf-8", "replace"))
            stream.flush()

    return write


def _final_metrics(tracking, target, run_id: str, ctx) -> dict[str, float] | None:
    """The run's last value of each metric, as MLflow holds it; None when it cannot be read."""
    from mlci.errors import ExternalServiceError

    try:
        return dict(tracking.MlflowTracking(target).get_run(run_id).metrics)
    except ExternalServiceError as exc:
        ctx.warn(f"could not read the run's final metrics: {exc.message}")
        return None
def _explain_cache(ctx, tracking, target, settings, prepared) -> int:
    from mlci.train import cache
    from mlci.train.lineage import CACHE_INPUTS_TAG

    for line in cache.key_lines(prepared, settings):
        ctx.info(line)
    if not settings.cache:
        ctx.info("train.cache is false: every run trains")
    hit = tracking.find_cached_run(target, settings.experiment, prepared.fingerprint, env=ctx.env)
    if hit is not None:
        ctx.info(f"cache hit: `mlci train` would re-use FINISHED run {hit.run_id}")
        return 0
    found = cache.nearest(prepared.key.record(), tracking.recent_tagged_runs(
        target, settings.experiment, CACHE_INPUTS_TAG, env=ctx.env))
    if found is None:
        ctx.info(f"cache miss: no finished run with recorded inputs in experiment {settings.experiment!r}")
        return 0
    ctx.info("cache miss: `mlci train` would train")
    for line in cache.comparison_lines(prepared.key.record(), *found):
        ctx.info(line)
    return 0


def run(args, ctx) -> int:
    import time
    from pathlib import Path

    from mlci.adapters import mlflow_tracking as tracking
    from mlci.adapters.ci_env import read_ci_env
    from mlci.outputs import write_json
    from mlci.outputs.dotenv import write_dotenv
    from mlci.train import job, lineage, results
    from mlci.train.settings import load_settings

    started = time.monotonic()
    config = ctx.config()
    settings = load_settings(config, ctx.env, experiment_flag=args.experiment, max_runtime_flag=args.max_runtime)
    command = job.resolve_command(args.train_command, settings, config)
    cwd = Path.cwd()
    target = tracking.resolve_target(settings.tracking_uri, cwd)
    prepared = job.prepare(settings, config, command, ctx.env, cwd=cwd,
                           exclude=[ctx.out_dir, *target.local_files()])
    ci = read_ci_env(ctx.env)
    if args.explain_cache:
        return _explain_cache(ctx, tracking, target, settings, prepared)
    ctx.info(f"fingerprint {prepared.fingerprint[:12]} (code: {prepared.code_mode}, {len(prepared.code.files)} "
             f"file(s); {len(prepared.data)} data file(s), {len(prepared.params)} param(s), "
             f"{len(prepared.key.inputs.env)} environment variable(s))")

    def write_outputs(*, run_id, experiment_id, status, exit_code, cache_hit, telemetry, duration, metrics,
                      killed_reason=None, reused_from=None, warnings=()):
        write_dotenv(ctx.out_path("train.env"), results.dotenv_values(
            run_id=run_id, experiment_id=experiment_id, artifact_path=settings.artifact_path, cache_hit=cache_hit))
        write_json(ctx.out_path("train.json"), results.train_summary(
            run_id=run_id, experiment_id=experiment_id, experiment=settings.experiment, tracking_uri=target.display,
            status=status, exit_code=exit_code, duration_seconds=duration, step_seconds=time.monotonic() - started,
            metrics=metrics,
            fingerprint=prepared.fingerprint, cache_hit=cache_hit, artifact_path=settings.artifact_path,
            command=lineage.command_text(command), params=prepared.params, data=[d for _, d in prepared.data],
            telemetry=telemetry, killed_reason=killed_reason, reused_from=reused_from, warnings=warnings,
        ))

    if settings.cache and not args.no_cache:
        hit = tracking.find_cached_run(target, settings.experiment, prepared.fingerprint, env=ctx.env)
        if hit is not None:
            tags = hit.tags
            origin = tags.get("mlci.gitlab.pipeline_url") or (
                f"pipeline {tags['mlci.gitlab.pipeline_id']}" if tags.get("mlci.gitlab.pipeline_id") else "a local run")
            ctx.info(f"cache hit: re-using FINISHED run {hit.run_id} from {origin}; training skipped "
                     "(pass --no-cache or set train.cache: false to train anyway)")
            if ci.pipeline_id.isdigit():
                from mlci.errors import ExternalServiceError

                try:
                    tracking.mark_reused(target, hit.run_id, ci.pipeline_id, ci.job_id, env=ctx.env)
                except ExternalServiceError as exc:  # the hit stands; only train-select would miss the run
                    ctx.warn(f"could not tag the re-used run for this pipeline: {exc.message}")
            import json

            try:
                telemetry = json.loads(hit.tags.get("mlci.telemetry", "null"))
            except ValueError:
                telemetry = None
            try:
                reused_duration = float(hit.tags.get("mlci.duration_seconds", "0"))
            except ValueError:
                reused_duration = 0.0
            write_outputs(run_id=hit.run_id, experiment_id=hit.experiment_id, status=hit.status, exit_code=0,
                          cache_hit=True, telemetry=telemetry, duration=reused_duration,
                          metrics=dict(getattr(hit, "metrics", {}) or {}) or None, reused_from={
                              key: tags[f"mlci.gitlab.{key}"]
                              for key in ("pipeline_id", "pipeline_url", "job_url", "commit")
                              if tags.get(f"mlci.gitlab.{key}")
                          } | {"run_name": hit.run_name})
            return 0
        from mlci.train import cache
        from mlci.train.lineage import FINGERPRINT_BASE_TAG

        # Same code, data, params, image and command, another environment: say which variable.
        same_base = tracking.find_cached_run(target, settings.experiment, prepared.key.base, env=ctx.env,
                                             tag=FINGERPRINT_BASE_TAG)
        if same_base is not None:
            ctx.info(cache.environment_miss(prepared.key.record(), same_base.run_id, same_base.tags))

    from mlci.train.wrapper import TrainRequest, run_tracked

    if settings.max_runtime:
        ctx.info(f"runaway guard: the command is stopped after {settings.max_runtime:g}s "
                 f"({settings.max_runtime_origin})")
    request = TrainRequest(
        command=command,
        experiment=settings.experiment,
        run_name=lineage.default_run_name(args.run_name, ctx.env),
        tags=lineage.run_tags(
            ci_tags=ci.lineage_tags(), fingerprint=prepared.fingerprint, command=command, image=settings.image,
            data=[d for _, d in prepared.data], code_mode=prepared.code_mode, user=ci.user_login,
            fingerprint_base=prepared.key.base, cache_inputs=prepared.key.record(),
        ),
        params=prepared.params,
        data=prepared.data,
        base_env=ctx.env,
        policy=settings.guard_policy(settings.max_runtime),
        telemetry_interval=settings.telemetry_interval,
        log_data_artifacts=settings.log_data_artifacts,
        data_artifacts_max_bytes=settings.data_artifacts_max_bytes,
        registry_uri=settings.registry_uri,
    )
    from mlci.redact import LineRedactor, Redactor

    # The command's own lines (MLflow prints "View run ... at: <tracking uri>") are redacted like ours.
    passthrough = LineRedactor(stream_writer(ctx.stdout), Redactor.from_env(ctx.env))
    try:
        result = run_tracked(
            request, tracking.MlflowTracking(target), child_tracking_uri=target.child_uri,
            output=passthrough, info=ctx.info, warn=ctx.warn,
        )
    finally:
        passthrough.flush()
    outcome = result.outcome
    metrics = _final_metrics(tracking, target, result.run_id, ctx)
    write_outputs(run_id=result.run_id, experiment_id=result.experiment_id, status=outcome.status,
                  exit_code=outcome.exit_code, cache_hit=False, telemetry=result.telemetry,
                  duration=outcome.duration_seconds, metrics=metrics,
                  killed_reason=outcome.killed_reason, warnings=result.warnings)
    if outcome.status == "FINISHED":
        from mlci.durations import format_duration
        from mlci.report.build import ReportOptions

        ran = format_duration(outcome.duration_seconds)
        ctx.info(f"run {result.run_id} FINISHED: the training command ran {ran}; "
                 f"mlci train took {format_duration(time.monotonic() - started)} in all (train.json: "
                 "duration_seconds and step_seconds)")
        ctx.info(f"final metrics of run {result.run_id}:")
        for line in results.final_metrics_table(metrics or {}):
            ctx.info(line)
        ctx.info("see them in: " + results.where_to_see(
            tracking_uri=target.display, ui_url=ReportOptions.from_config(config).mlflow_ui_url,
            experiment_id=result.experiment_id, run_id=result.run_id))
    else:
        reason = f": {outcome.killed_reason}" if outcome.killed_reason else ""
        ctx.error(f"run {result.run_id} {outcome.status} (exit code {outcome.exit_code}){reason}")
    return outcome.exit_code
