"""What a tuning job leaves behind: tune.json, the best trial as train.json/train.env, the plots.

The study is final when no trial is queued or running any more. Whoever
sees it final first (the last tuning job, or `mlci tune best`) closes the
parent run with the best trial's tags and logs tune.json and the plots on it;
doing it twice is harmless.
"""

from __future__ import annotations

import json
from typing import Any

from mlci.errors import MlciError
from mlci.tune.settings import TuneSettings
from mlci.tune.study import ATTR_PARENT_RUN, counts, result_of, trial_json

PLOTS_DIR = "tune-plots"


def best_trial(study):
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def summary(study, tune: TuneSettings, *, job_trials: list[int], plots: list[tuple[str, str]]) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    tally = counts(trials)
    best = best_trial(study)
    budget = int(study.user_attrs.get("mlci.n_trials", tune.n_trials))
    return {
        "version": 1,
        "study": tune.study_name,
        "storage": tune.storage.display,
        "metric": tune.metric,
        "direction": tune.direction,
        "sampler": tune.sampler.get("name", "tpe"),
        "pruner": tune.pruner.get("name", "median"),
        "search_space": {p.name: p.describe() for p in tune.space},
        "n_trials": budget,
        "final": tally["running"] == 0 and tally["waiting"] == 0,
        "counts": tally,
        "parent_run_id": study.user_attrs.get(ATTR_PARENT_RUN),
        "best": trial_json(best) if best is not None else None,
        "this_job": sorted(job_trials),
        "plots": [{"file": f"{PLOTS_DIR}/{name}", "title": title} for name, title in plots],
        "trials": [trial_json(t) for t in sorted(trials, key=lambda t: t.number)],
    }


def write(ctx, study, tune: TuneSettings, *, tracking, target, train_settings, job_trials: list[int],
          finalize: bool, force: bool = False) -> dict[str, Any]:
    """tune.json (+ train.json/train.env of the best trial so far); when final, plots and the parent run too.

    `force`: finish even with trials left queued or running (the selection job after every tuning job ended).
    """
    from mlci.outputs import atomic_write, write_json
    from mlci.outputs.dotenv import write_dotenv
    from mlci.train import results as train_results

    plots: list[tuple[str, str]] = []
    doc = summary(study, tune, job_trials=job_trials, plots=plots)
    finishing = finalize and (doc["final"] or force)
    if finishing:
        from mlci.tune.plots import render

        for name, title, png in render(study, ctx.warn, tune.metric):
            atomic_write(ctx.out_path(f"{PLOTS_DIR}/{name}"), png)
            plots.append((name, title))
        doc = summary(study, tune, job_trials=job_trials, plots=plots)
    path = write_json(ctx.out_path("tune.json"), doc) or ctx.out_path("tune.json")
    best = best_trial(study)
    if best is not None and result_of(best).get("run_id"):
        run = tracking.get_run(result_of(best)["run_id"])
        cache_hit = bool(result_of(best).get("cache_hit"))
        write_json(ctx.out_path("train.json"), train_results.run_train_summary(
            run_id=run.run_id, experiment_id=run.experiment_id, experiment=train_settings.experiment,
            tracking_uri=target.display, status=run.status, start_time_ms=run.start_time_ms,
            end_time_ms=run.end_time_ms, tags=run.tags, params=run.params, artifact_path=train_settings.artifact_path,
            cache_hit=cache_hit, run_name=run.run_name,
        ))
        write_dotenv(ctx.out_path("train.env"), train_results.dotenv_values(
            run_id=run.run_id, experiment_id=run.experiment_id, artifact_path=train_settings.artifact_path,
            cache_hit=cache_hit,
        ))
    if finishing:
        _close_parent(ctx, tracking, doc, path, plots)
    return doc


def _close_parent(ctx, tracking, doc: dict[str, Any], summary_path, plots) -> None:
    parent = doc.get("parent_run_id")
    if not parent:
        return
    best = doc.get("best") or {}
    tags = {f"mlci.tune.{key}": str(value) for key, value in doc["counts"].items()}
    if best:
        tags.update({
            "mlci.tune.best_trial": str(best["number"]),
            "mlci.tune.best_run_id": str(best.get("run_id") or ""),
            "mlci.tune.best_value": repr(best["value"]),
            "mlci.tune.best_params": json.dumps(best["params"])[:5000],
        })
    try:
        tracking.set_tags(parent, tags)
        tracking.log_artifact(parent, summary_path, None)
        for name, _ in plots:
            tracking.log_artifact(parent, ctx.out_path(f"{PLOTS_DIR}/{name}"), PLOTS_DIR)
        if tracking.get_run(parent).status == "RUNNING":
            tracking.terminate(parent, "FINISHED")
    except MlciError as exc:  # the study's result is in tune.json either way
        ctx.warn(f"could not close the study's parent run {parent}: {exc.message}")
