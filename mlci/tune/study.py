"""Optuna objects from TuneSettings: sampler, pruner, parameter suggestions, trial bookkeeping."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlci.tune.settings import ParamSpec, TuneSettings

# Study user attributes mlci keeps in the storage (the study's own record of how it was set up).
ATTR_PARENT_RUN = "mlci.parent_run_id"
ATTR_READY = "mlci.ready"
ATTR_N_TRIALS = "mlci.n_trials"
ATTR_METRIC = "mlci.metric"
ATTR_EXPERIMENT = "mlci.experiment"
# Trial user attributes, one write each (a journal file takes a lock per write):
# who runs it {job, job_id, host, pid}, set when claimed; and how it ended
# {run_id, cache_hit, duration_seconds, reason, pruned_step}.
ATTR_WORKER = "mlci.worker"
ATTR_RESULT = "mlci.result"


def worker_of(trial) -> dict[str, Any]:
    value = trial.user_attrs.get(ATTR_WORKER)
    return value if isinstance(value, dict) else {}


def result_of(trial) -> dict[str, Any]:
    value = trial.user_attrs.get(ATTR_RESULT)
    return value if isinstance(value, dict) else {}

def build_sampler(settings: TuneSettings, trial_number: int | None = None):
    """The sampler; with a seed, one per trial (seed + trial number).

    A seeded sampler restarts its random sequence in every process, so parallel jobs, and a
    retried job, would draw the very values their peers already tried. Seeding by trial number
    keeps a study reproducible and every trial's draw its own. QMC is the exception: its
    sequence is indexed by trial number already and must be the same in every job.
    """
    import optuna

    spec = settings.sampler
    name = spec.get("name", "tpe")
    seed = spec.get("seed")
    if seed is not None and trial_number is not None and name != "qmc":
        seed = int(seed) + trial_number
    startup = spec.get("n-startup-trials")
    extra = {"n_startup_trials": startup} if startup is not None else {}
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, **extra)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    # constant_liar: parallel jobs do not all try the same region while their trials run.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, **extra)


def pruner_name(settings: TuneSettings) -> str:
    return settings.pruner.get("name", "median")


def build_pruner(settings: TuneSettings):
    import optuna

    spec = settings.pruner
    name = pruner_name(settings)
    if name == "none":
        return optuna.pruners.NopPruner()
    common = {
        "n_startup_trials": int(spec.get("n-startup-trials", 5)),
        "n_warmup_steps": int(spec.get("n-warmup-steps", 0)),
        "interval_steps": int(spec.get("interval-steps", 1)),
    }
    if name == "percentile":
        return optuna.pruners.PercentilePruner(float(spec.get("percentile", 25)), **common)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=spec.get("min-resource", "auto"),
                                                      reduction_factor=int(spec.get("reduction-factor", 3)))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=int(spec.get("min-resource", 1)),
                                              max_resource=spec.get("max-resource", "auto"),
                                              reduction_factor=int(spec.get("reduction-factor", 3)))
    return optuna.pruners.MedianPruner(**common)


def suggest(trial, spec: ParamSpec) -> Any:
    """The trial's value for one parameter (a retried trial gets back the value it had)."""
    if spec.kind == "categorical":
        return trial.suggest_categorical(spec.name, list(spec.choices))
    if spec.kind == "int":
        return trial.suggest_int(spec.name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(spec.name, float(spec.low), float(spec.high), step=spec.step, log=spec.log)


def superseded_numbers(trials: Iterable) -> set[int]:
    """Failed trials that were queued again (Optuna's retry callback records the original's number)."""
    found: set[int] = set()
    for trial in trials:
        history = trial.system_attrs.get("retry_history") or []
        found.update(int(n) for n in history)
    return found


def counts(trials: Iterable) -> dict[str, int]:
    """Trials by state; `retried` failures are counted apart, as their retry is the same evaluation."""
    trials = list(trials)
    retried = superseded_numbers(trials)
    result = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0, "retried": 0}
    for trial in trials:
        state = trial.state.name
        if state == "FAIL" and trial.number in retried:
            result["retried"] += 1
        else:
            key = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
                   "WAITING": "waiting"}[state]
            result[key] += 1
    result["evaluations"] = sum(result[k] for k in ("complete", "pruned", "failed", "running", "waiting"))
    return result


def trial_json(trial) -> dict[str, Any]:
    result = result_of(trial)
    retried_from = trial.system_attrs.get("failed_trial")
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value if trial.state.name == "COMPLETE" else None,
        "params": dict(trial.params),
        "run_id": result.get("run_id"),
        "cache_hit": bool(result.get("cache_hit", False)),
        "duration_seconds": result.get("duration_seconds"),
        "pruned_at_step": result.get("pruned_step"),
        "reason": result.get("reason"),
        "retry_of": int(retried_from) if retried_from is not None else None,
        "job": worker_of(trial).get("job"),
    }
