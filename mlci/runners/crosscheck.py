"""Pools against the pipeline, both ways (pure).

GitLab hands a job to a runner whose tags include every tag of the job. So:
- a training job (or any GPU-tagged job, or one using a pool's tag) whose tags
  no pool covers waits forever for a runner: an error at the job's `tags:`;
- a pool that covers no job of the pipeline is a fleet nobody uses: a warning
  at the pool's `tags:` in mlci.yml;
- a job's KUBERNETES_*_REQUEST above the pool's declared ceiling, or a job
  `timeout:` above the pool's max-job-lifetime, fails (or is cut short) on the
  runner: an error at the job's line.

The same pass yields what rendering needs from the pipeline: per pool, the
largest CPU and memory requests of the jobs it serves, which become the
runner's `*_overwrite_max_allowed` limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mlci.lint.findings import Finding
from mlci.lint.source import Location
from mlci.runners.model import Fleet, Pool, parse_seconds

GPU_TAG = re.compile(r"gpu|cuda|nvidia", re.IGNORECASE)
TRAIN_JOBS = ("mlci-train",)
RETRAIN_TAGS_VARIABLE = "MLCI_RETRAIN_TRAIN_TAGS"
RETRAIN_TIMEOUT_VARIABLE = "MLCI_RETRAIN_TRAIN_TIMEOUT"
RETRAIN_JOB = "mlci-retrain child pipeline's training job"

_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]{0,2})\s*$")
_FACTORS = {
    "": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}


def quantity(text: object) -> float | None:
    """A Kubernetes resource quantity ("500m", "4", "16Gi") as a number; None when it is not one."""
    match = _QUANTITY.match(str(text))
    if not match or match.group(2) not in _FACTORS:
        return None
    return float(match.group(1)) * _FACTORS[match.group(2)]


@dataclass(frozen=True)
class RoutedJob:
    """A pipeline job as far as runner routing cares."""

    name: str
    tags: tuple[str, ...]
    where: Location  # its tags line
    training: bool = False
    cpu_request: str | None = None
    cpu_where: Location | None = None
    memory_request: str | None = None
    memory_where: Location | None = None
    timeout: str | None = None
    timeout_where: Location | None = None


@dataclass
class CrossCheck:
    findings: list[Finding] = field(default_factory=list)
    served: dict[str, list[str]] = field(default_factory=dict)  # pool -> job names
    cpu_max: dict[str, str] = field(default_factory=dict)  # pool -> largest CPU request of its jobs
    memory_max: dict[str, str] = field(default_factory=dict)
    checked: bool = False  # False when there was no pipeline to check against

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def serves(pool: Pool, tags: Iterable[str]) -> bool:
    wanted = set(tags)
    return bool(wanted) and wanted <= set(pool.tags)


def _variable(job: dict, pipeline, name: str) -> tuple[str | None, tuple]:
    """(value, path of the line that set it), job variables first, then the global ones."""
    from mlci.lint.rules import _expand

    for scope, path in ((job.get("variables") or {}, None), (pipeline.data.get("variables") or {}, ("variables",))):
        if isinstance(scope, dict) and name in scope:
            raw = scope[name]
            raw = raw.get("value") if isinstance(raw, dict) else raw
            if raw is None:
                return None, ()
            value = _expand(str(raw), job, pipeline)
            return (value if value is not None else str(raw)), (path or ("job", "variables")) + (name,)
    return None, ()


_INPUT_REF = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")


def set_at(pipeline, location: Location, root) -> Location:
    """Where the user set a value: the `inputs:` line of the include, when `location` is a template's
    `$[[ inputs.NAME ]]` and the main file includes that template with NAME; else `location` itself."""
    if root is None or location.file == pipeline.main_file:
        return location
    try:
        line = (root / location.file).read_text(encoding="utf-8").splitlines()[location.line - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        return location
    match = _INPUT_REF.search(line)
    includes = pipeline.data.get("include")
    if not match or not isinstance(includes, list):
        return location
    for index, entry in enumerate(includes):
        if not isinstance(entry, dict) or str(entry.get("local", "")).lstrip("/") != location.file:
            continue
        if match[1] in (entry.get("inputs") or {}):
            return pipeline.where(("include", index, "inputs", match[1]))
    return location


def never_runs(job: dict) -> bool:
    """Every rule says `when: never`: a template switch is off (e.g. tuning), so no runner ever gets the job."""
    rules = job.get("rules")
    return isinstance(rules, list) and bool(rules) and all(
        isinstance(rule, dict) and rule.get("when") == "never" for rule in rules)


def jobs_from_pipeline(pipeline, root=None) -> list[RoutedJob]:
    """Tagged jobs of a merged pipeline (mlci.lint.resolve.Pipeline), plus the retrain child's training job.

    With the repository `root`, a value that a template takes from an include input is located at the
    include's `inputs:` line, the line the user writes.
    """
    jobs: list[RoutedJob] = []
    for name, job in pipeline.jobs.items():
        tags = job.get("tags")
        if not isinstance(tags, list) or not tags or never_runs(job):
            continue
        tags = tuple(str(t) for t in tags)

        def where(path: tuple, job_name: str = name) -> Location:
            return set_at(pipeline, pipeline.job_where(job_name, path), root)

        def located(var: str, job: dict = job, where=where) -> tuple[str | None, Location | None]:
            value, path = _variable(job, pipeline, var)
            if value is None:
                return None, None
            return value, (where(path[1:]) if path[0] == "job" else set_at(pipeline, pipeline.where(path), root))

        cpu, cpu_at = located("KUBERNETES_CPU_REQUEST")
        memory, memory_at = located("KUBERNETES_MEMORY_REQUEST")
        timeout = job.get("timeout")
        jobs.append(RoutedJob(
            name=name, tags=tags, where=where(("tags",)),
            training=name in TRAIN_JOBS or any(GPU_TAG.search(t) for t in tags),
            cpu_request=cpu, cpu_where=cpu_at, memory_request=memory, memory_where=memory_at,
            timeout=None if timeout is None else str(timeout),
            timeout_where=where(("timeout",)) if timeout is not None else None,
        ))
    variables = pipeline.data.get("variables") or {}
    raw_tags = variables.get(RETRAIN_TAGS_VARIABLE) if isinstance(variables, dict) else None
    if isinstance(raw_tags, str) and raw_tags.strip():
        tags = tuple(t.strip() for t in raw_tags.split(",") if t.strip())
        timeout = variables.get(RETRAIN_TIMEOUT_VARIABLE)
        jobs.append(RoutedJob(
            name=RETRAIN_JOB, tags=tags, where=set_at(pipeline, pipeline.where(("variables", RETRAIN_TAGS_VARIABLE)),
                                                      root),
            training=True, timeout=str(timeout) if isinstance(timeout, str) and timeout else None,
            timeout_where=set_at(pipeline, pipeline.where(("variables", RETRAIN_TIMEOUT_VARIABLE)), root)
            if timeout else None,
        ))
    return jobs


def location_of(where: str) -> Location:
    """'mlci.yml:12:7' -> Location (mlci.yml errors are strings; lint findings carry Locations)."""
    parts = where.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return Location(parts[0], int(parts[1]), int(parts[2]))
    return Location(where, 1, 1)


def _larger(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if (quantity(a) or 0) >= (quantity(b) or 0) else b


def crosscheck(fleet: Fleet, jobs: list[RoutedJob] | None, where_in_config) -> CrossCheck:
    """Check pools against `jobs` (None: no pipeline to check). `where_in_config(path)` -> 'mlci.yml:L:C'."""
    result = CrossCheck(checked=jobs is not None)
    pool_tags = {t for pool in fleet.pools for t in pool.tags}
    for pool in fleet.pools:
        result.served[pool.name] = []
    for job in jobs or []:
        covering = [pool for pool in fleet.pools if serves(pool, job.tags)]
        relevant = job.training or bool(set(job.tags) & pool_tags)
        if not covering:
            if relevant and fleet.pools:
                declared = "; ".join(f"{p.name} [{', '.join(p.tags)}]" for p in fleet.pools)
                result.findings.append(Finding.make(
                    "runner-pool-missing",
                    f"job '{job.name}' needs a runner with tags [{', '.join(job.tags)}], but no pool in mlci.yml "
                    f"has all of them (pools: {declared}); the job would wait for a runner until it times out",
                    job.where, job=job.name,
                ))
            continue
        for pool in covering:
            result.served[pool.name].append(job.name)
            _check_limits(pool, job, result, where_in_config)
    if jobs is not None:
        for pool in fleet.pools:
            if not result.served[pool.name]:
                result.findings.append(Finding.make(
                    "runner-pool-unused",
                    f"pool '{pool.name}' (tags [{', '.join(pool.tags)}]) serves no job of the pipeline: no job "
                    "asks for a subset of its tags",
                    location_of(where_in_config((*pool.path, "tags"))),
                ))
    result.findings.sort(key=Finding.sort_key)
    return result


def _check_limits(pool: Pool, job: RoutedJob, result: CrossCheck, where_in_config) -> None:
    if job.timeout and pool.max_job_lifetime:
        try:
            seconds = parse_seconds(job.timeout)
        except ValueError:
            seconds = 0
        if seconds > pool.max_job_lifetime:
            result.findings.append(Finding.make(
                "runner-pool-limits",
                f"job '{job.name}' has timeout {job.timeout}, longer than pool '{pool.name}' max-job-lifetime "
                f"{pool.max_job_lifetime_text}: the runner stops it at {pool.max_job_lifetime_text}",
                job.timeout_where or job.where, job=job.name,
            ))
    if pool.executor != "kubernetes":
        return
    for kind, asked, at, declared in (
        ("cpu", job.cpu_request, job.cpu_where, pool.cpu_request_max),
        ("memory", job.memory_request, job.memory_where, pool.memory_request_max),
    ):
        if asked is None:
            continue
        if quantity(asked) is None:
            result.findings.append(Finding.make(
                "runner-pool-limits",
                f"job '{job.name}' KUBERNETES_{kind.upper()}_REQUEST {asked!r} is not a Kubernetes quantity",
                at or job.where, job=job.name,
            ))
            continue
        if declared is not None and quantity(asked) > (quantity(declared) or 0):
            result.findings.append(Finding.make(
                "runner-pool-limits",
                f"job '{job.name}' requests {kind} {asked}, above pool '{pool.name}' {kind}-request-max {declared}: "
                "the runner refuses the overwrite",
                at or job.where, job=job.name,
            ))
        target = result.cpu_max if kind == "cpu" else result.memory_max
        target[pool.name] = _larger(target.get(pool.name), asked)
