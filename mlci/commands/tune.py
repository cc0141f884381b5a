"""`mlci tune [--study NAME] [--n-trials N] [--timeout S] [--no-cache] [-- CMD ARGS...]`, `mlci tune best`

`mlci tune` joins the pipeline's Optuna study (creating it, with its MLflow
parent run and its queued trials, when it is the first job) and runs queued
trials until none is left or its time is up. Each trial runs the training
command like `mlci train` does, with the sampled values as MLCI_PARAM_<NAME>,
in an MLflow child run. Any number of jobs (`parallel: N`) can share one
study through a database storage. Writes tune.json, and train.json/train.env
for the best trial so far; the job that sees the study finished also draws
the plots into tune-plots/ and closes the parent run.

`mlci tune best` (the selection job after the tuning jobs) does that last
part for the whole study: tune.json, tune-plots/, and the best trial as
train.json/train.env for the gate and the report. Exit 1 when no trial
completed, 2 on a config error, 3 when the storage or MLflow fails.
"""

from __future__ import annotations

import argparse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def configure(parser) -> None:
    from mlci.commands.train import _positive_seconds

    parser.add_argument("--study", metavar="NAME",
                        help="study name (default: tune.study-name, else <project>:<ref>:<pipeline id>)")
    parser.add_argument("--n-trials", type=_positive_int, metavar="N",
                        help="trials in the study when this job creates it (default: tune.n-trials)")
    parser.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS",
                        help="start no new trial after this long (default: tune.timeout)")
    parser.add_argument("--no-cache", action="store_true",
                        help="train every trial even when a FINISHED run with the same fingerprint exists")
    parser.add_argument("--experiment", metavar="NAME",
                        help="MLflow experiment (default: mlflow.experiment, i.e. CI_PROJECT_PATH)")
    # `best`, or `-- CMD ARGS`: one REMAINDER, because an optional positional would swallow the command.
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="best | -- CMD ARGS",
                        help="`best`: finish the study and export its best trial; otherwise the training command "
                             "(default: train.command from mlci.yml)")


def run(args, ctx) -> int:
    from mlci.errors import UsageError

    rest = list(args.rest)
    if rest and rest[0] == "best":
        if len(rest) > 1:
            raise UsageError(f"`mlci tune best` takes no arguments, got {' '.join(rest[1:])!r}")
        return _best(args, ctx)
    if rest and rest[0] != "--":
        raise UsageError(f"unknown `mlci tune` action {rest[0]!r}",
                         hint="use `mlci tune`, `mlci tune best`, or `mlci tune -- CMD ARGS`")
    return _tune(args, ctx, rest)


def _settings(args, ctx):
    from pathlib import Path

    from mlci.train.settings import load_settings
    from mlci.tune.settings import load_tune_settings

    config = ctx.config()
    cwd = Path.cwd()
    train_settings = load_settings(config, ctx.env, experiment_flag=args.experiment)
    tune = load_tune_settings(config, ctx.env, cwd=cwd, study_flag=args.study, n_trials_flag=args.n_trials,
                              timeout_flag=args.timeout)
    ctx.secrets = tune.storage.secrets
    return config, cwd, train_settings, tune


def _check_sharing(tune, config, env, info_warn) -> None:
    """Parallel jobs must reach one study; say so before any trial instead of running N separate studies."""
    from pathlib import Path

    from mlci.errors import UsageError

    try:
        total = int(env.get("CI_NODE_TOTAL") or "1")
    except ValueError:
        total = 1
    journal_setting = config.get("tune", "journal-file") or ""
    if total > 1 and tune.storage.scope == "job":
        raise UsageError(
            f"{config.where(('tune', 'storage-scope'))}: this is one of {total} parallel tuning jobs, but the study "
            "storage lives in one job (tune.storage-scope: job): each job would run a study of its own",
            hint="run one tuning job (tune-jobs: 1) with a job's own database, or set MLCI_TUNE_STORAGE to a "
                 "database every job reaches",
        )
    if total > 1 and tune.storage.kind == "journal" and not Path(journal_setting).is_absolute():
        raise UsageError(
            f"this is one of {total} parallel tuning jobs, but the study is kept in a journal file inside the "
            "job's own workspace: each job would run a study of its own",
            hint="set MLCI_TUNE_STORAGE (a masked CI/CD variable) to a PostgreSQL URL that every job reaches, or, "
                 "when every job runs on one shell runner, tune.journal-file to an absolute path",
        )
    if env.get("CI_JOB_ID") and tune.storage.kind == "journal" and not Path(journal_setting).is_absolute():
        info_warn("the study's journal file is in this job's workspace: a retried job, or `mlci tune best` in "
                  "another job, will not find it (set MLCI_TUNE_STORAGE for a database)")


def _tune(args, ctx, rest: list[str]) -> int:
    import time

    from mlci.adapters import mlflow_tracking as tracking_mod
    from mlci.adapters import optuna_storage as storage
    from mlci.adapters.ci_env import read_ci_env
    from mlci.commands.train import stream_writer
    from mlci.errors import CheckFailed
    from mlci.train import job
    from mlci.train.settings import runtime_guard
    from mlci.tune import results
    from mlci.tune.runner import TuneJob, join_study, mark_lost_run, recover_predecessor

    started = time.monotonic()
    config, cwd, settings, tune = _settings(args, ctx)
    command = job.resolve_command(rest, settings, config)
    _check_sharing(tune, config, ctx.env, ctx.warn)
    target = tracking_mod.resolve_target(settings.tracking_uri, cwd)
    exclude = [ctx.out_dir, *target.local_files()]
    if tune.storage.kind == "journal":
        exclude += [tune.storage.path, tune.storage.path.with_name(tune.storage.path.name + ".lock")]
    # The training config is checked (code paths, data, params) before a trial is claimed.
    job.prepare(settings, config, command, ctx.env, cwd=cwd, exclude=exclude)
    ci = read_ci_env(ctx.env)
    ctx.info(f"search space: {'; '.join(p.describe() for p in tune.space)}")
    tracking = None  # opened after the storage: a wrong database URL fails before MLflow's import

    def on_lost(study, frozen) -> None:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        RetryHeartbeatStaleTrialCallback(max_retry=tune.max_retries)(study, frozen)
        reason = "lost with its job (no heartbeat, or the job was retried); queued again with the same parameters"
        ctx.warn(f"trial {frozen.number}: {reason}")
        mark_lost_run(tracking, tracking.experiment_id(settings.experiment, create=False), tune.study_name,
                      frozen.number, reason, ctx.warn)

    backend = storage.open_storage(tune.storage, heartbeat_seconds=tune.heartbeat_seconds,
                                   grace_seconds=tune.grace_seconds, stale_callback=on_lost)
    tracking = tracking_mod.MlflowTracking(target)
    study, parent = join_study(tune=tune, backend=backend, tracking=tracking, experiment=settings.experiment,
                               ci_tags=ci.lineage_tags(), info=ctx.info, warn=ctx.warn)
    job_key = ci.job_name or ""
    if job_key:
        recover_predecessor(study=study, tune=tune, backend=backend, job_key=job_key, job_id=ci.job_id,
                            on_lost=on_lost, info=ctx.info)
    guard, _ = runtime_guard(None, ctx.env.get("CI_JOB_TIMEOUT"))
    tune_job = TuneJob(
        ctx=ctx, config=config, train_settings=settings, tune=tune, command=command, target=target,
        tracking=tracking, ci=ci, storage_backend=backend, study=study, parent_run_id=parent, cwd=cwd,
        exclude=exclude, deadline=started + guard if guard else None, output=stream_writer(ctx.stdout),
        no_cache=args.no_cache,
    )
    if not job_key:
        recover_predecessor(study=study, tune=tune, backend=backend, job_key=tune_job.job_key, job_id="",
                            on_lost=on_lost, info=ctx.info)
    outcome = tune_job.run()
    with storage.storage_errors(tune.storage, "read the study's results"):
        doc = results.write(ctx, study, tune, tracking=tracking, target=target, train_settings=settings,
                            job_trials=[r.number for r in outcome.results], finalize=True)
    _print_summary(ctx, doc, len(outcome.results))
    if outcome.exit_code:
        return outcome.exit_code
    if doc["final"] and doc["best"] is None:
        raise CheckFailed(f"study {tune.study_name!r} finished without one completed trial",
                          hint="see the trials' reasons above and in tune.json; does the command log "
                               f"{tune.metric!r}?")
    return 0


def _print_summary(ctx, doc: dict, ran: int) -> None:
    tally = doc["counts"]
    parts = [f"{tally['complete']} complete", f"{tally['pruned']} pruned", f"{tally['failed']} failed"]
    if tally["running"]:
        parts.append(f"{tally['running']} running")
    if tally["waiting"]:
        parts.append(f"{tally['waiting']} queued")
    if tally["retried"]:
        parts.append(f"{tally['retried']} lost and retried")
    state = "finished" if doc["final"] else "in progress"
    ctx.info(f"study {doc['study']!r} {state}: {tally['evaluations']}/{doc['n_trials']} trial(s): "
             f"{', '.join(parts)}; this job ran {ran}")
    best = doc.get("best")
    if best:
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        ctx.info(f"best: trial {best['number']} {doc['metric']}={best['value']:g} [{params}] run {best['run_id']}")


def _best(args, ctx) -> int:
    import time

    from mlci.adapters import mlflow_tracking as tracking_mod
    from mlci.adapters import optuna_storage as storage
    from mlci.errors import CheckFailed, UsageError
    from mlci.tune import results
    from mlci.tune.study import counts

    config, cwd, settings, tune = _settings(args, ctx)
    if tune.storage.scope == "job":
        raise UsageError(
            f"{config.where(('tune', 'storage-scope'))}: the study lived in the tuning job's own database, which "
            "ended with that job",
            hint="that job already wrote the result; select its best trial with `mlci train-select`",
        )
    backend = storage.open_storage(tune.storage, heartbeat_seconds=tune.heartbeat_seconds,
                                   grace_seconds=tune.grace_seconds, stale_callback=None)
    study = storage.load_existing(backend, tune.storage, tune.study_name)
    if study is None:
        raise CheckFailed(f"no study {tune.study_name!r} in {tune.storage.display}",
                          hint="did the tuning jobs run in this pipeline, with the same storage (MLCI_TUNE_STORAGE)?")
    with storage.storage_errors(tune.storage, "read the study"):
        if storage.has_heartbeat(backend):
            # A tuning job lost at the end leaves a RUNNING trial; give Optuna's heartbeat check its grace period.
            deadline = time.monotonic() + tune.grace_seconds + 2 * tune.heartbeat_seconds
            while counts(study.get_trials(deepcopy=False))["running"] and time.monotonic() < deadline:
                time.sleep(min(1.0, tune.heartbeat_seconds))
                storage.fail_stale_trials(study)
        tally = counts(study.get_trials(deepcopy=False))
    if tally["running"]:
        ctx.warn(f"{tally['running']} trial(s) still RUNNING: a tuning job is still at work; selecting among the "
                 "finished ones")
    if tally["waiting"]:
        ctx.warn(f"{tally['waiting']} queued trial(s) never ran (a tuning job was lost and not retried, or the jobs "
                 "ran out of time); selecting among the finished ones")
    target = tracking_mod.resolve_target(settings.tracking_uri, cwd)
    tracking = tracking_mod.MlflowTracking(target)
    with storage.storage_errors(tune.storage, "read the study's results"):
        doc = results.write(ctx, study, tune, tracking=tracking, target=target, train_settings=settings,
                            job_trials=[], finalize=True, force=True)
    _print_summary(ctx, doc, 0)
    if doc["best"] is None:
        raise CheckFailed(f"study {tune.study_name!r} has no completed trial",
                          hint="see the trials' reasons in tune.json; does the command log "
                               f"{tune.metric!r}?")
    return 0
