"""The runner fleet declared in mlci.yml, checked beyond what the JSON Schema can say.

The schema already guarantees shapes, name patterns and enums. Here come the
rules that span fields: the cost guard (a pool that keeps nodes running must
say `always-on: true`, and its floor cost must be priceable), durations,
spot fallback, and what each executor can render. Every problem is collected
with its `mlci.yml:LINE:COL`, so one run reports them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlci.errors import ConfigError, ConfigErrors

HOURS_PER_MONTH = 730  # 365 * 24 / 12, the figure cloud price pages use
MIN_JOB_LIFETIME = 600  # GitLab refuses a runner maximum timeout below 10 minutes
MIN_IDLE_TIMEOUT = 60
POOL_LABEL = "mlci/pool"
GPU_TAINT_KEY = "nvidia.com/gpu"
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"  # what the cluster autoscaler reads for GPU node groups


def parse_seconds(text: Any) -> int:
    """'10m', '6h', '1h 30m' -> seconds; ValueError with a readable message."""
    from mlci.durations import parse_duration

    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ValueError(f"{text!r} has no unit; write e.g. \"10m\" or \"6h\"")
    return int(parse_duration(text).total_seconds())


def go_duration(seconds: int) -> str:
    """Seconds as a Go duration string (the form the cluster autoscaler's options take): 600 -> 10m0s."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"


@dataclass(frozen=True)
class NodeGroup:
    """One cloud node group of a kubernetes pool (spot pools with a fallback have two)."""

    name: str
    capacity: str  # "spot" | "on-demand"
    min: int
    max: int
    priority: int  # cluster-autoscaler priority expander: higher is tried first


@dataclass(frozen=True)
class Pool:
    index: int  # position under runners.pools, for locations
    name: str
    tags: tuple[str, ...]
    executor: str
    gpu_type: str
    gpu_count: int
    instance_type: str | None
    gpus_per_node: int
    min: int
    max: int
    idle_timeout: int
    idle_timeout_text: str
    max_job_lifetime: int
    max_job_lifetime_text: str
    capacity: str
    fallback: str
    pull_policy: str
    always_on: bool
    image: str
    cpu_request_max: str | None = None
    memory_request_max: str | None = None

    @property
    def path(self) -> tuple:
        return ("runners", "pools", self.index)

    @property
    def jobs_per_node(self) -> int:
        # A docker host gives its one job every GPU (gpus = "all").
        return 1 if self.executor == "docker" else self.gpus_per_node // self.gpu_count

    @property
    def concurrency(self) -> int:
        return self.max * self.jobs_per_node

    @property
    def release(self) -> str:
        """Helm release, runner name and node group prefix."""
        return f"mlci-{self.name}"

    @property
    def token_variable(self) -> str:
        return "MLCI_RUNNER_TOKEN_" + self.name.upper().replace("-", "_")

    @property
    def ansible_group(self) -> str:
        return "mlci_pool_" + self.name.replace("-", "_")

    @property
    def node_labels(self) -> dict[str, str]:
        return {POOL_LABEL: self.name, ACCELERATOR_LABEL: self.gpu_type}

    @property
    def node_taints(self) -> list[dict[str, str]]:
        """Taints of the pool's nodes, as Kubernetes writes them; job pods tolerate exactly these."""
        return [
            {"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"},
            {"key": POOL_LABEL, "value": self.name, "effect": "NoSchedule"},
        ]

    def node_groups(self) -> list[NodeGroup]:
        if self.capacity == "on-demand":
            return [NodeGroup(self.release, "on-demand", self.min, self.max, 50)]
        groups = [NodeGroup(f"{self.release}-spot", "spot", self.min, self.max, 50)]
        if self.fallback == "on-demand":
            # The fallback group starts empty; the autoscaler turns to it only when spot cannot be had.
            groups.append(NodeGroup(f"{self.release}-on-demand", "on-demand", 0, self.max, 10))
        return groups


@dataclass(frozen=True)
class Price:
    on_demand: float
    spot: float | None = None


@dataclass(frozen=True)
class PoolCost:
    hourly: float | None  # one node at the price it is bought at
    floor_monthly: float | None  # min nodes around the clock
    ceiling_monthly: float | None  # max nodes around the clock at the dearest price they can be bought at


@dataclass
class Fleet:
    pools: list[Pool] = field(default_factory=list)
    prices: dict[str, Price] = field(default_factory=dict)
    currency: str = "USD"
    namespace: str = "gitlab-runner"
    scale_up_timeout: int = 900
    ami_type: str = "AL2023_x86_64_NVIDIA"
    disk_size: int = 100
    driver_branch: str = "570"
    runner_version: str = ""
    gitlab_url: str = ""
    out_dir: str = "infra/runners"
    ci_file: str = ".gitlab-ci.yml"
    warnings: list[tuple[tuple, str]] = field(default_factory=list)  # (config path, message)

    def of(self, executor: str) -> list[Pool]:
        return [p for p in self.pools if p.executor == executor]

    def cost(self, pool: Pool) -> PoolCost:
        price = self.prices.get(pool.instance_type or "")
        if price is None:
            return PoolCost(None, 0.0 if pool.min == 0 else None, None)
        hourly = price.spot if pool.capacity == "spot" else price.on_demand
        dearest = price.on_demand if (pool.capacity == "on-demand" or pool.fallback == "on-demand") else price.spot
        floor = 0.0 if pool.min == 0 else (None if hourly is None else round(pool.min * hourly * HOURS_PER_MONTH, 2))
        ceiling = None if dearest is None else round(pool.max * dearest * HOURS_PER_MONTH, 2)
        return PoolCost(hourly, floor, ceiling)


def _has_credentials(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.username or parts.password)


def _is_quantity(value: Any) -> bool:
    from mlci.runners.crosscheck import quantity

    return not isinstance(value, bool) and quantity(value) is not None


def _duration(config, path: tuple, raw: Any, problems: list[ConfigError]) -> int:
    try:
        return parse_seconds(raw)
    except ValueError as exc:
        problems.append(config.error(path, str(exc)))
        return 0


def _pool(config, index: int, raw: dict, prices: dict[str, Price], problems: list[ConfigError]) -> Pool:
    here = ("runners", "pools", index)
    executor = raw.get("executor", "kubernetes")
    gpu = raw["gpu"]
    gpu_count = int(gpu.get("count", 1))
    capacity = raw.get("capacity", "on-demand")
    fallback = raw.get("fallback") or ("on-demand" if capacity == "spot" else "none")
    idle = _duration(config, (*here, "idle-timeout"), raw["idle-timeout"], problems)
    lifetime = _duration(config, (*here, "max-job-lifetime"), raw["max-job-lifetime"], problems)
    minimum, maximum = int(raw.get("min", 0)), int(raw["max"])
    always_on = bool(raw.get("always-on", False))
    instance_type = raw.get("instance-type")

    if idle and idle < MIN_IDLE_TIMEOUT:
        problems.append(config.error((*here, "idle-timeout"), "idle-timeout must be at least 1m"))
    if lifetime and lifetime < MIN_JOB_LIFETIME:
        problems.append(config.error(
            (*here, "max-job-lifetime"),
            "max-job-lifetime must be at least 10m (GitLab refuses a shorter runner maximum timeout)",
        ))
    if minimum > maximum:
        problems.append(config.error((*here, "min"), f"min ({minimum}) is larger than max ({maximum})"))
    if minimum > 0 and not always_on:
        problems.append(config.error(
            (*here, "min"),
            f"pool '{raw['name']}' keeps {minimum} node(s) running while idle; set `always-on: true` to accept "
            "that cost, or `min: 0` to scale to zero",
        ))
    if "fallback" in raw and capacity != "spot":
        problems.append(config.error((*here, "fallback"), "fallback only applies to pools with capacity: spot"))

    gpus_per_node = int(raw.get("gpus-per-node", gpu_count))
    if executor == "kubernetes":
        if not instance_type:
            problems.append(config.error(here, f"pool '{raw['name']}': kubernetes pools need `instance-type` "
                                               "(the machine type of the GPU node group)"))
        if gpus_per_node < gpu_count:
            problems.append(config.error(
                (*here, "gpus-per-node"),
                f"gpus-per-node ({gpus_per_node}) is smaller than gpu.count ({gpu_count}): no job would fit a node",
            ))
    else:
        if capacity == "spot":
            problems.append(config.error(
                (*here, "capacity"),
                "spot capacity is rendered for kubernetes pools only; the Ansible role configures hosts you "
                "already run (declare them on-demand, with their price)",
            ))
        if "gpus-per-node" in raw and gpus_per_node != gpu_count:
            problems.append(config.error(
                (*here, "gpus-per-node"),
                "a docker pool gives each job every GPU of its host (gpus = \"all\"), one job per host: set "
                "gpu.count to the GPUs of a host and drop gpus-per-node",
            ))
        for key in ("cpu-request-max", "memory-request-max"):
            if key in raw:
                problems.append(config.error((*here, key), f"{key} applies to kubernetes pools only"))

    for key in ("cpu-request-max", "memory-request-max"):
        if key in raw and not _is_quantity(raw[key]):
            problems.append(config.error((*here, key), f"{key} {raw[key]!r} is not a Kubernetes quantity (e.g. 8, "
                                                       "500m, 64Gi)"))

    if minimum > 0:
        price = prices.get(instance_type or "")
        where = (*here, "instance-type") if instance_type else here
        if price is None:
            problems.append(config.error(
                where,
                f"pool '{raw['name']}' keeps {minimum} node(s) running, but runners.prices has no price for "
                f"instance type '{instance_type or '(none)'}'; add it so the monthly floor cost is recorded "
                "(0 for hardware you already own)",
            ))
        elif capacity == "spot" and price.spot is None:
            problems.append(config.error(
                where, f"spot pool '{raw['name']}' keeps {minimum} node(s) running; runners.prices."
                       f"{instance_type} needs a `spot` price for the floor cost"))

    return Pool(
        index=index, name=raw["name"], tags=tuple(raw["tags"]), executor=executor, gpu_type=gpu["type"],
        gpu_count=gpu_count, instance_type=instance_type, gpus_per_node=gpus_per_node, min=minimum, max=maximum,
        idle_timeout=idle, idle_timeout_text=str(raw["idle-timeout"]), max_job_lifetime=lifetime,
        max_job_lifetime_text=str(raw["max-job-lifetime"]), capacity=capacity, fallback=fallback,
        pull_policy=raw.get("pull-policy", "if-not-present"), always_on=always_on,
        image=raw.get("image", "python:3.12-slim"),
        cpu_request_max=None if raw.get("cpu-request-max") is None else str(raw["cpu-request-max"]),
        memory_request_max=raw.get("memory-request-max"),
    )


def load_fleet(config) -> Fleet:
    """The fleet in `config` (an mlci.config.Config); ConfigErrors lists every problem with its location."""
    section = config.get("runners", default={}) or {}
    problems: list[ConfigError] = []
    prices = {
        name: Price(float(entry["on-demand"]), None if entry.get("spot") is None else float(entry["spot"]))
        for name, entry in (section.get("prices") or {}).items()
    }
    kubernetes = section.get("kubernetes") or {}
    fleet = Fleet(
        prices=prices,
        currency=section.get("currency", "USD"),
        namespace=kubernetes.get("namespace", "gitlab-runner"),
        ami_type=(section.get("eks") or {}).get("ami-type", "AL2023_x86_64_NVIDIA"),
        disk_size=int((section.get("eks") or {}).get("disk-size", 100)),
        driver_branch=(section.get("ansible") or {}).get("nvidia-driver-branch", "570"),
        runner_version=(section.get("ansible") or {}).get("gitlab-runner-version", ""),
        gitlab_url=section.get("gitlab-url") or config.get("gitlab", "url") or "",
        out_dir=section.get("out-dir", "infra/runners"),
        ci_file=section.get("ci-file", ".gitlab-ci.yml"),
    )
    if _has_credentials(fleet.gitlab_url):
        where = ("runners", "gitlab-url") if section.get("gitlab-url") else ("gitlab", "url")
        problems.append(config.error(
            where, "the GitLab URL the runners register against carries a user or password; it would be written "
                   "into committed files: give the plain URL (tokens never go in a URL)",
        ))
        fleet.gitlab_url = ""
    fleet.scale_up_timeout = _duration(
        config, ("runners", "kubernetes", "scale-up-timeout"), kubernetes.get("scale-up-timeout", "15m"), problems,
    )
    seen: dict[str, int] = {}
    for index, raw in enumerate(section.get("pools") or []):
        if raw["name"] in seen:
            first = seen[raw["name"]]
            problems.append(config.error(("runners", "pools", index, "name"),
                                         f"pool name '{raw['name']}' is used twice (first at pools[{first}])"))
            continue
        seen[raw["name"]] = index
        fleet.pools.append(_pool(config, index, raw, prices, problems))
    by_tags: dict[frozenset, Pool] = {}
    for pool in fleet.pools:
        twin = by_tags.setdefault(frozenset(pool.tags), pool)
        if twin is not pool:
            fleet.warnings.append((
                (*pool.path, "tags"),
                f"pools '{twin.name}' and '{pool.name}' have the same tags: GitLab hands a job to either of them "
                "at random; give each pool a tag of its own",
            ))
    if problems:
        raise ConfigErrors(problems)
    return fleet
