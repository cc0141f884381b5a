"""The `tune:` config section as plain values, checked beyond the schema (pure).

Everything the schema cannot say (a low above its high, log scale from 0, an
int range with fractional bounds, a direction nobody gave) is reported here
with its mlci.yml:LINE:COL, all at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mlci.errors import ConfigError, ConfigErrors, UsageError
from mlci.train.lineage import MATRIX_PARAM_PREFIX
from mlci.train.select import goal_from_directions

DEFAULT_JOURNAL = ".mlci/tune.journal"
GRACE_HEARTBEATS = 4


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    @property
    def env_name(self) -> str:
        """How the training command sees it (read back by mlci train as run param `name`)."""
        return MATRIX_PARAM_PREFIX + self.name.upper()

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.name} in {list(self.choices)}"
        scale = ", log" if self.log else ""
        step = f", step {self.step:g}" if self.step else ""
        return f"{self.name} in [{self.low:g}, {self.high:g}] ({self.kind}{scale}{step})"


@dataclass(frozen=True)
class Storage:
    kind: str  # rdb | journal
    url: str = ""  # rdb: the SQLAlchemy URL as given (may hold a password)
    path: Path | None = None  # journal: absolute path of the journal file
    scope: str = "shared"  # shared | job

    @property
    def display(self) -> str:
        """Safe to print and to write into artifacts: no user:password."""
        if self.kind == "journal":
            return f"journal file {self.path}"
        from mlci.adapters.mlflow import redact_uri

        return redact_uri(self.url)

    @property
    def secrets(self) -> list[str]:
        """Strings that must never appear in output: the URL and its password (raw and decoded)."""
        if self.kind != "rdb":
            return []
        values = [self.url]
        try:
            password = urlsplit(self.url).password
        except ValueError:
            password = None
        if password:
            values += [password, unquote(password)]
        # A very short password would mask ordinary words; URL parsers never echo it alone anyway.
        return [v for v in values if len(v) >= 4]


@dataclass(frozen=True)
class TuneSettings:
    metric: str
    direction: str  # maximize | minimize
    space: tuple[ParamSpec, ...]
    n_trials: int
    timeout: float | None
    trial_timeout: float | None
    study_name: str
    storage: Storage
    heartbeat_seconds: int
    grace_seconds: int
    max_retries: int
    sampler: Mapping[str, Any] = field(default_factory=dict)
    pruner: Mapping[str, Any] = field(default_factory=dict)
    start_from: Mapping[str, Any] = field(default_factory=dict)

    @property
    def goal(self) -> str:
        return "max" if self.direction == "maximize" else "min"


def default_study_name(env: Mapping[str, str], project: str, branch: str = "") -> str:
    """One study per pipeline: every parallel job, and a retried job, computes the same name."""
    project_part = env.get("CI_PROJECT_PATH") or project or "mlci"
    ref = env.get("CI_COMMIT_REF_SLUG") or env.get("CI_COMMIT_REF_NAME") or branch or "local"
    pipeline = env.get("CI_PIPELINE_ID") or "local"
    return f"{project_part}:{ref}:{pipeline}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_space(raw: Mapping[str, Any], config) -> tuple[tuple[ParamSpec, ...], list[ConfigError]]:
    specs: list[ParamSpec] = []
    problems: list[ConfigError] = []

    def problem(path: tuple, message: str, hint: str | None = None) -> None:
        problems.append(config.error(("tune", "search-space", *path), message, hint=hint))

    for name, entry in raw.items():
        kind = entry["type"]
        low, high, log, step = entry.get("low"), entry.get("high"), bool(entry.get("log", False)), entry.get("step")
        if kind == "categorical":
            choices = entry.get("choices")
            if choices is None:
                problem((name,), f"categorical parameter {name!r} needs `choices`")
                continue
            for key in ("low", "high", "step", "log"):
                if key in entry:
                    problem((name, key), f"`{key}` does not apply to a categorical parameter")
            if len({repr(c) for c in choices}) != len(choices):
                problem((name, "choices"), f"`choices` of {name!r} repeat a value")
            specs.append(ParamSpec(name, kind, choices=tuple(choices)))
            continue
        if "choices" in entry:
            problem((name, "choices"), f"`choices` only applies to categorical parameters, not {kind}")
        missing = [key for key in ("low", "high") if key not in entry]
        if missing:
            problem((name,), f"{kind} parameter {name!r} needs " + " and ".join(f"`{m}`" for m in missing))
            continue
        bad = False
        if kind == "int":
            for key, value in (("low", low), ("high", high), ("step", step)):
                if value is not None and not float(value).is_integer():
                    problem((name, key), f"`{key}` of int parameter {name!r} must be a whole number, got {value}")
                    bad = True
        for key, value in (("low", low), ("high", high)):
            if _number(value) and not math.isfinite(value):
                problem((name, key), f"`{key}` of {name!r} must be a finite number")
                bad = True
        if bad:
            continue
        if low > high:
            problem((name, "low"), f"`low` ({low:g}) of {name!r} is above its `high` ({high:g})")
            continue
        if log and low <= 0:
            problem((name, "low"), f"a log-scale parameter needs `low` above 0; {name!r} has {low:g}")
            continue
        if log and step is not None:
            problem((name, "step"), f"{name!r}: `step` and `log: true` cannot be combined (Optuna allows one)")
            continue
        if step is not None and step > high - low and high > low:
            problem((name, "step"), f"`step` ({step:g}) of {name!r} is wider than its range")
            continue
        if kind == "int":
            low, high = int(low), int(high)
            step = int(step) if step is not None else None
        else:
            low, high = float(low), float(high)
            step = float(step) if step is not None else None
        specs.append(ParamSpec(name, kind, low=low, high=high, log=log, step=step))
    return tuple(specs), problems


def check_start_from(start: Mapping[str, Any], space: tuple[ParamSpec, ...], config) -> list[ConfigError]:
    by_name = {p.name: p for p in space}
    problems = []
    for name, value in start.items():
        where = ("tune", "start-from", name)
        spec = by_name.get(name)
        if spec is None:
            problems.append(config.error(where, f"{name!r} is not in tune.search-space"))
        elif spec.kind == "categorical":
            if value not in spec.choices:
                problems.append(config.error(where, f"{value!r} is not one of the choices of {name!r}"))
        elif not _number(value) or not spec.low <= value <= spec.high:
            problems.append(config.error(where, f"{value!r} is outside {spec.describe()}"))
        elif spec.kind == "int" and not float(value).is_integer():
            problems.append(config.error(where, f"{name!r} is an int parameter, got {value!r}"))
    return problems


def load_storage(tune: Mapping[str, Any], env: Mapping[str, str], cwd: Path) -> Storage:
    scope = tune.get("storage-scope", "shared")
    url = (tune.get("storage") or "").strip()
    if url:
        return Storage("rdb", url=normalize_db_url(url), scope=scope)
    journal = Path(tune.get("journal-file") or DEFAULT_JOURNAL)
    return Storage("journal", path=journal if journal.is_absolute() else cwd / journal, scope=scope)


def normalize_db_url(url: str) -> str:
    """postgres:// and postgresql:// use psycopg 3 (the driver the tune extra installs)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_tune_settings(config, env: Mapping[str, str], *, cwd: Path, study_flag: str | None = None,
                       n_trials_flag: int | None = None, timeout_flag: float | None = None) -> TuneSettings:
    tune = config.section("tune") or {}
    if not tune.get("search-space") and not tune.get("metric"):
        raise UsageError(
            f"{config.where(())}: no `tune:` section",
            hint="add tune.metric and tune.search-space to mlci.yml (see the README's `mlci tune` section)",
        )
    problems: list[ConfigError] = []
    metric = tune.get("metric")
    if not metric:
        problems.append(config.error(("tune",), "tune.metric is not set: which metric is the objective?"))
    space_raw = tune.get("search-space") or {}
    if not space_raw:
        problems.append(config.error(("tune", "search-space"), "tune.search-space is empty: nothing to tune (add a "
                                     "parameter, e.g. lr: {type: float, low: 1e-4, high: 1e-1, log: true})"))
    space, space_problems = parse_space(space_raw, config)
    problems += space_problems
    direction = tune.get("direction")
    if metric and not direction:
        goal = goal_from_directions(metric, config.get("model", "metrics-direction") or {})
        direction = {"max": "maximize", "min": "minimize"}.get(goal or "")
        if direction is None:
            problems.append(config.error(
                ("tune", "metric"), f"is a larger or smaller {metric!r} better? Set tune.direction "
                f"(maximize|minimize) or model.metrics-direction.{metric} (higher|lower)",
            ))
    start_from = dict(tune.get("start-from") or {})
    problems += check_start_from(start_from, space, config)
    sampler = dict(tune.get("sampler") or {})
    if sampler.get("name") == "cmaes":
        categorical = [p.name for p in space if p.kind == "categorical"]
        if categorical:
            problems.append(config.error(
                ("tune", "sampler", "name"),
                f"CMA-ES samples float and int parameters only; {', '.join(categorical)} would be sampled at "
                "random (use sampler tpe for categorical parameters)"))
    if problems:
        raise ConfigErrors(problems)
    heartbeat = int(tune.get("heartbeat-seconds", 30))
    return TuneSettings(
        metric=metric,
        direction=direction,
        space=space,
        n_trials=int(n_trials_flag or tune.get("n-trials", 20)),
        timeout=float(timeout_flag or tune.get("timeout") or 0) or None,
        trial_timeout=float(tune.get("trial-timeout") or 0) or None,
        study_name=study_flag or tune.get("study-name") or default_study_name(
            env, str(config.get("project", "name") or config.get("mlflow", "experiment") or "")),
        storage=load_storage(tune, env, cwd),
        heartbeat_seconds=heartbeat,
        grace_seconds=int(tune.get("grace-seconds") or GRACE_HEARTBEATS * heartbeat),
        max_retries=int(tune.get("max-retries", 2)),
        sampler=sampler,
        pruner=dict(tune.get("pruner") or {}),
        start_from=start_from,
    )


def env_value(value: Any) -> str:
    """A sampled value as the training command reads it from MLCI_PARAM_<NAME>."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)
