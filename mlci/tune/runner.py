"""One tuning job: join the shared study, run queued trials through `mlci train`'s machinery, report.

A trial is the training command in its own MLflow run (a child of the
study's parent run), prepared, cached and supervised by the same functions
`mlci train` uses; the sampled values reach the command as MLCI_PARAM_<NAME>.
Resumption is Optuna's: RDB storages record a heartbeat per running trial,
and a trial that falls silent is failed and queued again with the same
parameters by Optuna's RetryHeartbeatStaleTrialCallback.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.errors import MlciError, UsageError
from mlci.tune import REPORT_FILE_ENV, STUDY_ENV, TRIAL_ENV
from mlci.tune.settings import TuneSettings, env_value
from mlci.tune.study import (
    ATTR_EXPERIMENT,
    ATTR_METRIC,
    ATTR_N_TRIALS,
    ATTR_PARENT_RUN,
    ATTR_READY,
    ATTR_RESULT,
    ATTR_WORKER,
    pruner_name,
    suggest,
    worker_of,
)

SETUP_WAIT_SECONDS = 60.0
TUNE_TAG_STUDY = "mlci.tune.study"
TUNE_TAG_TRIAL = "mlci.tune.trial"
TUNE_TAG_ROLE = "mlci.tune.role"
TUNE_TAG_STATE = "mlci.tune.state"
SIGNAL_REASON = "received by mlci"  # Supervisor's wording for a SIGTERM/SIGINT forwarded to the command


@dataclass
class TrialResult:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    params: dict[str, Any]
    value: float | None = None
    run_id: str = ""
    cache_hit: bool = False
    reason: str = ""
    retry: bool = False  # not the trial's fault (the job ran out of time, was cancelled): queue it again
    exit_code: int | None = None  # set when the job itself must stop (a forwarded signal)
    duration: float = 0.0
    pruned_step: int | None = None


@dataclass
class JobOutcome:
    results: list[TrialResult] = field(default_factory=list)
    stopped: str = ""  # why the job stopped starting trials, when not for lack of queued trials
    exit_code: int = 0


class TuneJob:
    """Everything a tuning job's trials share; `run()` works the queue until it is empty or time is up."""

    def __init__(self, *, ctx, config, train_settings, tune: TuneSettings, command, target, tracking, ci,
                 storage_backend, study, parent_run_id: str, cwd: Path, exclude: list[Path],
                 deadline: float | None, output: Callable[[bytes], None], no_cache: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.ctx, self.config, self.settings, self.tune = ctx, config, train_settings, tune
        self.command, self.target, self.tracking, self.ci = command, target, tracking, ci
        self.backend, self.study, self.parent_run_id = storage_backend, study, parent_run_id
        self.cwd, self.exclude, self.deadline, self.output = cwd, exclude, deadline, output
        self.no_cache, self.clock = no_cache, clock
        self.started = clock()
        self.job_key = ci.job_name or f"{socket.gethostname()} (local)"

    # -- the queue ---------------------------------------------------------
    def run(self) -> JobOutcome:
        from mlci.adapters import optuna_storage as storage

        outcome = JobOutcome()
        while True:
            stop = self._stop_reason(outcome.results)
            if stop:
                outcome.stopped = stop
                self.ctx.info(f"no new trial: {stop}")
                break
            with storage.storage_errors(self.tune.storage, "claim a trial"):
                if storage.has_heartbeat(self.backend):
                    storage.fail_stale_trials(self.study)
                trial = storage.claim_waiting_trial(self.study, before_trial=self._use_sampler_for)
            if trial is None:
                break
            result = self._run_claimed(trial)
            outcome.results.append(result)
            if result.exit_code is not None:
                outcome.exit_code = result.exit_code
                break
        return outcome

    def _use_sampler_for(self, number: int) -> None:
        from mlci.tune.study import build_sampler

        if self.tune.sampler.get("seed") is not None:
            self.study.sampler = build_sampler(self.tune, number)

    def _stop_reason(self, done: list[TrialResult]) -> str:
        now = self.clock()
        if self.tune.timeout and now - self.started >= self.tune.timeout:
            return f"tune.timeout of {self.tune.timeout:g}s reached"
        if self.deadline is not None:
            left = self.deadline - now
            longest = max((r.duration for r in done if not r.cache_hit), default=0.0)
            if left <= 0:
                return "the job's time is up"
            if longest and left < longest:
                return (f"{left:.0f}s of the job's time left, less than its longest trial so far ({longest:.0f}s); "
                        "the queued trials are left to the other jobs")
        return ""

    def _run_claimed(self, trial) -> TrialResult:
        from mlci.adapters import optuna_storage as storage

        number = trial.number
        with storage.storage_errors(self.tune.storage, f"start trial {number}"):
            trial.set_user_attr(ATTR_WORKER, {"job": self.job_key, "job_id": self.ci.job_id,
                                              "host": socket.gethostname(), "pid": os.getpid()})
        try:
            with storage.Heartbeat(self.backend, storage.trial_id_of(trial)):
                result = self._trial(trial)
        except BaseException as exc:
            # Not the trial's doing (storage, MLflow, a config error, Ctrl-C): close it and queue it again.
            retry = not isinstance(exc, MlciError) or getattr(exc, "exit_code", 0) == 3
            self._close(trial, TrialResult(number, "FAIL", dict(trial.params), reason=f"mlci stopped: {exc}",
                                           retry=retry), quiet=True)
            raise
        self._close(trial, result)
        return result

    def _close(self, trial, result: TrialResult, *, quiet: bool = False) -> None:
        from optuna.storages import RetryHeartbeatStaleTrialCallback
        from optuna.trial import TrialState

        from mlci.adapters import optuna_storage as storage

        with storage.storage_errors(self.tune.storage, f"record trial {result.number}"):
            current = self.study._storage.get_trial(storage.trial_id_of(trial))
            if current.state.is_finished():
                # Its heartbeats did not reach the database for the grace period, so another job declared it
                # lost and queued it again; the study keeps that verdict.
                self.ctx.warn(f"trial {result.number} was declared lost while it ran (no heartbeat reached the "
                              "storage) and queued again; this job's result stays on its run only")
                return
            trial.set_user_attr(ATTR_RESULT, {
                "run_id": result.run_id or None, "cache_hit": result.cache_hit,
                "duration_seconds": round(result.duration, 3), "reason": result.reason or None,
                "pruned_step": result.pruned_step,
            })
            if result.state == "COMPLETE":
                frozen = self.study.tell(trial, result.value)
            else:
                state = TrialState.PRUNED if result.state == "PRUNED" else TrialState.FAIL
                frozen = self.study.tell(trial, state=state)
            if result.retry:
                RetryHeartbeatStaleTrialCallback(max_retry=self.tune.max_retries)(self.study, frozen)
        if result.run_id:
            try:
                self.tracking.set_tags(result.run_id, {TUNE_TAG_STATE: result.state})
            except MlciError as exc:
                self.ctx.warn(f"could not tag run {result.run_id} with the trial's state: {exc.message}")
        if quiet:
            return
        params = ", ".join(f"{k}={v}" for k, v in result.params.items())
        if result.state == "COMPLETE":
            hit = " (cache hit)" if result.cache_hit else ""
            self.ctx.info(f"trial {result.number} COMPLETE: {self.tune.metric}={result.value:g}{hit} [{params}]")
        elif result.state == "PRUNED":
            self.ctx.info(f"trial {result.number} PRUNED: {result.reason} [{params}]")
        else:
            again = "; queued again with the same parameters" if result.retry else ""
            self.ctx.warn(f"trial {result.number} FAILED: {result.reason}{again} [{params}]")

    # -- one trial ---------------------------------------------------------
    def _trial(self, trial) -> TrialResult:
        from mlci.adapters import mlflow_tracking as tracking_mod
        from mlci.tune.intermediate import PruningWatch, ReportFile

        number = trial.number
        started = self.clock()
        try:
            params = {spec.name: suggest(trial, spec) for spec in self.tune.space}
        except ValueError as exc:  # a queued retry whose values no longer fit an edited search space
            return TrialResult(number, "FAIL", dict(trial.params), reason=f"parameters do not fit tune.search-space: "
                                                                           f"{exc}")
        with tempfile.TemporaryDirectory(prefix="mlci-tune-") as scratch:
            report_path = Path(scratch) / "intermediate.txt"
            env = dict(self.ctx.env)
            env.update({spec.env_name: env_value(params[spec.name]) for spec in self.tune.space})
            env.update({REPORT_FILE_ENV: str(report_path), TRIAL_ENV: str(number), STUDY_ENV: self.tune.study_name})
            prepared = self._prepare(env)
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            self.ctx.info(f"trial {number}: {shown} (fingerprint {prepared.fingerprint[:12]})")
            if self.settings.cache and not self.no_cache:
                hit = tracking_mod.find_cached_run(self.target, self.settings.experiment, prepared.fingerprint,
                                                   env=self.ctx.env)
                if hit is not None:
                    return self._reuse(number, hit, params, started)
            watch = PruningWatch(trial, ReportFile(report_path), pruner_name(self.tune), clock=self.clock)
            max_runtime, limit = self._trial_limit()
            result = self._train(number, env, prepared, watch, max_runtime)
        return self._judge(number, params, result, watch, limit, started)

    def _prepare(self, env):
        from mlci.train import job

        return job.prepare(self.settings, self.config, self.command, env, cwd=self.cwd, exclude=self.exclude)

    def _trial_limit(self) -> tuple[float | None, str]:
        """(seconds, which limit) for the next trial: its own timeout, or what is left of the job."""
        own = self.tune.trial_timeout
        left = self.deadline - self.clock() if self.deadline is not None else None
        if left is not None and (own is None or left < own):
            return max(left, 1.0), "job"
        return own, "trial"

    def _train(self, number: int, env, prepared, watch, max_runtime):
        from mlci.train import lineage
        from mlci.train.wrapper import TrainRequest, run_tracked

        settings = self.settings
        tags = lineage.run_tags(
            ci_tags=self.ci.lineage_tags(), fingerprint=prepared.fingerprint, command=self.command,
            image=settings.image, data=[d for _, d in prepared.data], code_mode=prepared.code_mode,
            user=self.ci.user_login,
        )
        tags.update({
            "mlflow.parentRunId": self.parent_run_id,
            TUNE_TAG_STUDY: self.tune.study_name[:5000],
            TUNE_TAG_TRIAL: str(number),
            TUNE_TAG_ROLE: "trial",
        })
        request = TrainRequest(
            command=self.command,
            experiment=settings.experiment,
            run_name=f"trial {number}",
            tags=tags,
            params=prepared.params,
            data=prepared.data,
            base_env=env,
            policy=settings.guard_policy(max_runtime),
            telemetry_interval=settings.telemetry_interval,
            log_data_artifacts=settings.log_data_artifacts,
            data_artifacts_max_bytes=settings.data_artifacts_max_bytes,
            registry_uri=settings.registry_uri,
            watch=watch,
        )
        return run_tracked(request, self.tracking, child_tracking_uri=self.target.child_uri, output=self.output,
                           info=self.ctx.info, warn=self.ctx.warn)

    def _judge(self, number, params, result, watch, limit: str, started: float) -> TrialResult:
        outcome = result.outcome
        base = {"run_id": result.run_id, "duration": self.clock() - started}
        if watch.file.bad_lines:
            self.ctx.warn(f"trial {number}: ignored {len(watch.file.bad_lines)} line(s) of ${REPORT_FILE_ENV} that "
                          f"are not `STEP VALUE` (first: {watch.file.bad_lines[0]!r})")
        if watch.pruned_at is not None:
            return TrialResult(number, "PRUNED", params, reason=outcome.killed_reason or "pruned",
                               pruned_step=watch.pruned_at[0], **base)
        if outcome.status == "FINISHED":
            value = self._metric(result.run_id)
            if value is None:
                return TrialResult(number, "FAIL", params, reason=f"the run finished without logging "
                                                                   f"{self.tune.metric!r} (or it is NaN)", **base)
            return TrialResult(number, "COMPLETE", params, value=value, **base)
        reason = outcome.killed_reason or f"the training command exited with code {outcome.exit_code}"
        if outcome.killed_reason and SIGNAL_REASON in outcome.killed_reason:
            return TrialResult(number, "FAIL", params, reason=reason, retry=True, exit_code=outcome.exit_code, **base)
        if outcome.killed_reason and outcome.killed_reason.startswith("max-runtime"):
            if limit == "job":
                return TrialResult(number, "FAIL", params, reason="the job ran out of time", retry=True, **base)
            return TrialResult(number, "FAIL", params, reason=f"tune.trial-timeout: {reason}", **base)
        return TrialResult(number, "FAIL", params, reason=reason, **base)

    def _metric(self, run_id: str) -> float | None:
        value = self.tracking.get_run(run_id).metrics.get(self.tune.metric)
        if value is None or math.isnan(value):
            return None
        return float(value)

    def _reuse(self, number: int, hit, params, started: float) -> TrialResult:
        from mlci.adapters import mlflow_tracking as tracking_mod

        origin = hit.tags.get("mlci.gitlab.pipeline_url") or hit.tags.get(TUNE_TAG_STUDY) or "an earlier run"
        self.ctx.info(f"trial {number}: cache hit, re-using FINISHED run {hit.run_id} ({origin}); not trained again")
        if self.ci.pipeline_id.isdigit():
            try:
                tracking_mod.mark_reused(self.target, hit.run_id, self.ci.pipeline_id, self.ci.job_id, env=self.ctx.env)
            except MlciError as exc:
                self.ctx.warn(f"could not tag the re-used run for this pipeline: {exc.message}")
        value = self._metric(hit.run_id)
        base = {"run_id": hit.run_id, "cache_hit": True, "duration": self.clock() - started}
        if value is None:
            return TrialResult(number, "FAIL", params, reason=f"the re-used run has no {self.tune.metric!r}", **base)
        return TrialResult(number, "COMPLETE", params, value=value, **base)


# --------------------------------------------------------------------------
# Joining the study.
# --------------------------------------------------------------------------

def parent_tags(tune: TuneSettings, ci_tags: dict[str, str]) -> dict[str, str]:
    space = {p.name: p.describe() for p in tune.space}
    return {
        **ci_tags,
        TUNE_TAG_ROLE: "parent",
        TUNE_TAG_STUDY: tune.study_name[:5000],
        "mlci.tune.storage": tune.storage.display[:5000],
        "mlci.tune.metric": tune.metric,
        "mlci.tune.direction": tune.direction,
        "mlci.tune.n_trials": str(tune.n_trials),
        "mlci.tune.sampler": tune.sampler.get("name", "tpe"),
        "mlci.tune.pruner": pruner_name(tune),
        "mlci.tune.search_space": json.dumps(space)[:5000],
    }


def join_study(*, tune: TuneSettings, backend, tracking, experiment: str, ci_tags: dict[str, str], info, warn,
               sleep: Callable[[float], None] = time.sleep):
    """(study, parent run id). The job that creates the study also opens the parent run and queues the budget."""
    from mlci.adapters import optuna_storage as storage
    from mlci.tune.study import build_pruner, build_sampler

    study, created = storage.create_or_load(backend, tune.storage, tune.study_name, tune.direction,
                                            build_sampler(tune), build_pruner(tune))
    if created:
        info(f"created study {tune.study_name!r} in {tune.storage.display}: {tune.n_trials} trial(s), "
             f"objective {tune.direction} {tune.metric}")
        return study, _set_up(study, tune, tracking, experiment, ci_tags, queued=0)
    direction = study.direction.name.lower()
    if direction != tune.direction:
        raise UsageError(f"study {tune.study_name!r} already exists and {direction}s; tune.direction says "
                         f"{tune.direction}", hint="set another tune.study-name for a new study")
    with storage.storage_errors(tune.storage, "read the study's setup"):
        waited = 0.0
        while not study.user_attrs.get(ATTR_READY) and waited < SETUP_WAIT_SECONDS:
            sleep(0.5)
            waited += 0.5
        attrs = study.user_attrs
    if not attrs.get(ATTR_READY):
        warn(f"study {tune.study_name!r} was created by a job that stopped before setting it up; finishing that")
        return study, _set_up(study, tune, tracking, experiment, ci_tags, queued=len(study.get_trials(deepcopy=False)))
    budget = int(attrs.get(ATTR_N_TRIALS, tune.n_trials))
    if budget != tune.n_trials:
        warn(f"study {tune.study_name!r} was created with {budget} trial(s); tune.n-trials={tune.n_trials} does not "
             "change a running study")
    if attrs.get(ATTR_METRIC) and attrs[ATTR_METRIC] != tune.metric:
        raise UsageError(f"study {tune.study_name!r} optimises {attrs[ATTR_METRIC]!r}, tune.metric says "
                         f"{tune.metric!r}", hint="set another tune.study-name for a new study")
    info(f"joined study {tune.study_name!r} in {tune.storage.display}")
    return study, str(attrs[ATTR_PARENT_RUN])


def _set_up(study, tune: TuneSettings, tracking, experiment: str, ci_tags: dict[str, str], *, queued: int) -> str:
    from mlci.adapters import optuna_storage as storage

    experiment_id = tracking.experiment_id(experiment)
    parent = tracking.start_run(experiment_id, run_name=f"tune {tune.study_name}"[:250],
                                tags=parent_tags(tune, ci_tags))
    with storage.storage_errors(tune.storage, "queue the study's trials"):
        study.set_user_attr(ATTR_PARENT_RUN, parent)
        study.set_user_attr(ATTR_N_TRIALS, tune.n_trials)
        study.set_user_attr(ATTR_METRIC, tune.metric)
        study.set_user_attr(ATTR_EXPERIMENT, experiment)
        # The budget, as queued trials: claiming one is atomic, so parallel jobs never run one too many.
        slots = max(tune.n_trials - queued, 0)
        if slots and tune.start_from and not queued:
            study.enqueue_trial(dict(tune.start_from))
            slots -= 1
        for _ in range(slots):
            study.enqueue_trial({})
        study.set_user_attr(ATTR_READY, True)
    return parent


# --------------------------------------------------------------------------
# A retried job: the trials its predecessor left RUNNING.
# --------------------------------------------------------------------------

def predecessor_trials(study, *, job_key: str, job_id: str) -> list:
    """RUNNING trials of an earlier attempt of this job (same job name, another job id; or a dead local pid)."""
    from optuna.trial import TrialState

    found = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = worker_of(trial)
        if worker.get("job") != job_key:
            continue
        earlier_ci_attempt = bool(job_id and worker.get("job_id") and worker.get("job_id") != job_id)
        dead_local_run = (not job_id and worker.get("host") == socket.gethostname()
                          and not _alive(worker.get("pid")))
        if earlier_ci_attempt or dead_local_run:
            found.append(trial)
    return found


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def recover_predecessor(*, study, tune: TuneSettings, backend, job_key: str, job_id: str, on_lost, info,
                        sleep: Callable[[float], None] = time.sleep,
                        clock: Callable[[], float] = time.monotonic) -> int:
    """Hand the trials an earlier attempt of this job left RUNNING back to the queue; returns how many.

    Database storage: wait (at most the grace period) for Optuna's heartbeat check to declare them
    stale, which fails them and queues them again through the stale-trial callback. A journal file
    has no heartbeat, so they are failed and queued again here, through the same callback.
    """
    from mlci.adapters import optuna_storage as storage

    with storage.storage_errors(tune.storage, "look for trials of an earlier attempt of this job"):
        lost = predecessor_trials(study, job_key=job_key, job_id=job_id)
        if not lost:
            return 0
        numbers = ", ".join(str(t.number) for t in lost)
        if not storage.has_heartbeat(backend):
            for trial in lost:
                if storage.fail_trial(study, trial.number):
                    on_lost(study, study._storage.get_trial(storage.trial_id(study, trial.number)))
            info(f"trial(s) {numbers} of an earlier attempt of this job were queued again")
            return len(lost)
        limit = tune.grace_seconds + 2 * tune.heartbeat_seconds
        info(f"trial(s) {numbers} of an earlier attempt of this job are still RUNNING; waiting up to {limit}s for "
             "Optuna's heartbeat check to queue them again")
        started = clock()
        while clock() - started < limit:
            storage.fail_stale_trials(study)
            pending = {t.number for t in predecessor_trials(study, job_key=job_key, job_id=job_id)}
            if not pending:
                return len(lost)
            sleep(min(1.0, tune.heartbeat_seconds))
        info(f"trial(s) {numbers} still send heartbeats: another process is running them; leaving them be")
        return 0


def mark_lost_run(tracking, experiment_id: str | None, study_name: str, number: int, reason: str, warn) -> None:
    """The MLflow run of a trial lost with its job: KILLED, not RUNNING forever."""
    if experiment_id is None:
        return
    try:
        runs = tracking.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{TUNE_TAG_TRIAL}` = '{number}' and attributes.status = 'RUNNING'",
            max_results=50,
        )
    except Exception as exc:  # the trial is queued again either way
        warn(f"could not look up the run of lost trial {number}: {exc}")
        return
    for run in runs:
        if run.data.tags.get(TUNE_TAG_STUDY) != study_name[:5000]:
            continue
        try:
            tracking.set_tags(run.info.run_id, {"mlci.killed_reason": reason, TUNE_TAG_STATE: "FAIL"})
            tracking.terminate(run.info.run_id, "KILLED")
        except MlciError as exc:
            warn(f"could not mark run {run.info.run_id} of lost trial {number} KILLED: {exc.message}")
