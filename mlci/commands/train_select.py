"""`mlci train-select [--metric M] [--goal max|min] [--pipeline ID] [--experiment NAME]`

Picks the best FINISHED run of this pipeline's `parallel: matrix` sweep and
exports it like `mlci train` does (train.env, and train.json rebuilt from the
run's tags for the report's training section), so later jobs gate and deploy
that run. train-select.json lists every candidate. Exit 1 when no run of the
pipeline has the metric.
"""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("--metric", help="metric to compare (default: train.select.metric)")
    parser.add_argument("--goal", choices=["max", "min"],
                        help="higher or lower is better (default: train.select.goal, else model.metrics-direction, "
                             "else max)")
    parser.add_argument("--pipeline", metavar="ID", help="pipeline whose runs compete (default: CI_PIPELINE_ID)")
    parser.add_argument("--experiment", metavar="NAME",
                        help="MLflow experiment (default: mlflow.experiment, i.e. CI_PROJECT_PATH)")


def run(args, ctx) -> int:
    from pathlib import Path

    from mlci.adapters import mlflow_tracking as tracking
    from mlci.errors import CheckFailed, UsageError
    from mlci.outputs import write_json
    from mlci.outputs.dotenv import write_dotenv
    from mlci.train import results
    from mlci.train.select import Candidate, goal_from_directions, select_best
    from mlci.train.settings import load_settings

    config = ctx.config()
    settings = load_settings(config, ctx.env, experiment_flag=args.experiment)
    # After `mlci tune`, its objective decides unless train.select says otherwise.
    tune_metric = config.get("tune", "metric")
    metric = args.metric or settings.select_metric or tune_metric
    if not metric:
        raise UsageError("which metric decides? pass --metric or set train.select.metric in mlci.yml")
    tune_goal = {"maximize": "max", "minimize": "min"}.get(config.get("tune", "direction") or "")
    goal = (args.goal or settings.select_goal or (tune_goal if metric == tune_metric else None)
            or goal_from_directions(metric, settings.metrics_direction) or "max")
    pipeline_id = args.pipeline or ctx.env.get("CI_PIPELINE_ID", "")
    if not pipeline_id:
        raise UsageError("no pipeline to select from: CI_PIPELINE_ID is not set",
                         hint="outside GitLab CI pass --pipeline ID")

    target = tracking.resolve_target(settings.tracking_uri, Path.cwd())
    if target.kind == "sqlite" and (target.db_path is None or not target.db_path.is_file()):
        raise CheckFailed(f"no MLflow store at {target.display}: no run of pipeline {pipeline_id} to select from",
                          hint="run train-select after the mlci-train jobs, sharing their tracking store")
    store = tracking.MlflowTracking(target)
    experiment_id = store.experiment_id(settings.experiment, create=False)
    runs = store.pipeline_runs(experiment_id, pipeline_id) if experiment_id is not None else []
    # A tuning study's parent run holds no model; its trials are the candidates.
    runs = [r for r in runs if r.tags.get("mlci.tune.role") != "parent"]
    reused_key = tracking.REUSED_TAG_PREFIX + pipeline_id
    candidates = [
        Candidate(
            run_id=r.run_id, experiment_id=r.experiment_id, metric=r.metrics.get(metric), run_name=r.run_name,
            start_time_ms=r.start_time_ms or 0, params=dict(r.params), job_url=r.tags.get("mlci.gitlab.job_url", ""),
            reused=reused_key in r.tags and r.tags.get(tracking.PIPELINE_TAG) != pipeline_id,
        )
        for r in runs
    ]
    selection = select_best(candidates, goal)
    write_json(ctx.out_path("train-select.json"), results.select_summary(
        metric=metric, goal=goal, pipeline_id=pipeline_id, experiment=settings.experiment, selection=selection,
        artifact_path=settings.artifact_path,
    ))
    for rank, candidate in enumerate(selection.ranked, 1):
        ctx.info(f"{rank:>3}. {candidate.run_id} {metric}={candidate.metric:g} {candidate.run_name}")
    for candidate in selection.ineligible:
        ctx.info(f"  -. {candidate.run_id} has no {metric} {candidate.run_name}")
    best = selection.best
    if best is None:
        found = f"{len(candidates)} FINISHED run(s)" if candidates else "no FINISHED run"
        raise CheckFailed(
            f"pipeline {pipeline_id} has {found} with metric {metric!r} in experiment {settings.experiment!r}",
            hint="check that the training command logs that metric, and that the train jobs succeeded",
        )
    chosen = next(r for r in runs if r.run_id == best.run_id)
    write_json(ctx.out_path("train.json"), results.run_train_summary(
        run_id=chosen.run_id, experiment_id=chosen.experiment_id, experiment=settings.experiment,
        tracking_uri=target.display, status=chosen.status, start_time_ms=chosen.start_time_ms,
        end_time_ms=chosen.end_time_ms, tags=chosen.tags, params=chosen.params,
        artifact_path=settings.artifact_path, cache_hit=best.reused, run_name=chosen.run_name,
    ))
    write_dotenv(ctx.out_path("train.env"), results.dotenv_values(
        run_id=best.run_id, experiment_id=best.experiment_id, artifact_path=settings.artifact_path,
        cache_hit=best.reused,
    ))
    ctx.info(f"selected run {best.run_id} ({metric}={best.metric:g}, goal {goal}) of {len(selection.ranked)} "
             f"candidate(s)")
    return 0
