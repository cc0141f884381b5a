"""deploy.canary as typed values: the experiment's settings, its metrics and its router.

Semantic problems the schema cannot see (an unknown environment, a latency
metric without a threshold, a router that does not fit the environment's
target) are ConfigErrors located in mlci.yml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.deploy.settings import DeploySettings, Environment, load_settings, with_defaults
from mlci.durations import parse_duration
from mlci.monitor.rules import ERROR_STATUS_CODES

DEFAULT_BASELINE = 0.01
NGINX_TARGETS = ("mlserver", "mlflow-serve")


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # error-rate | latency | custom
    better: str  # lower | higher
    min_effect: float
    baseline: float | None
    threshold: float | None
    events_query: str | None
    requests_query: str | None
    status_codes: str = ERROR_STATUS_CODES
    # custom, fed back as a file or table: path, format, version/outcome/time columns, base (mlci.yml's folder)
    outcomes: dict[str, Any] | None = None

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "better": self.better, "min-effect": self.min_effect,
                **({"threshold": self.threshold} if self.threshold is not None else {})}


@dataclass(frozen=True)
class CanarySettings:
    environment: Environment
    deploy: DeploySettings
    mode: str
    percent: float
    alpha: float
    power: float
    max_looks: int
    min_duration: float
    max_duration: float
    on_max_duration: str
    baseline_window: float
    min_baseline_requests: int
    wait: float
    poll: float
    metrics: tuple[Metric, ...]
    router: dict[str, Any]

    @property
    def canary_environment(self) -> str:
        """Where the new version's own server is recorded (state file, scrape labels, Kubernetes objects)."""
        return f"{self.environment.name}-canary"

    @property
    def design_settings(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "power": self.power, "max-looks": self.max_looks,
                "min-duration": self.min_duration, "max-duration": self.max_duration,
                "on-max-duration": self.on_max_duration}

    def nginx_config_path(self) -> Path:
        configured = self.router.get("config")
        if configured:
            path = Path(configured.replace("{environment}", self.environment.name))
            return path if path.is_absolute() else self.deploy.base_dir / path
        return self.deploy.state_dir / "nginx" / f"{self.environment.name}.conf"


def _seconds(config, path: tuple, text: str) -> float:
    if re.fullmatch(r"\s*0+\s*[A-Za-z]*\s*", text):  # "0s": no minimum, no waiting
        return 0.0
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise config.error(path, str(exc)) from None


def load_canary_settings(config, *, environment: str | None = None) -> CanarySettings:
    from mlci.config import section_schema

    deploy = load_settings(config)
    schema = section_schema("deploy")["properties"]["canary"]
    raw = config.section("deploy") or {}
    section = with_defaults(schema, raw.get("canary") or {})
    base = ("deploy", "canary")
    name = environment or section.get("environment") or deploy.last.name
    env = deploy.get(name)
    if env is None:
        where = (*base, "environment") if not environment and section.get("environment") else base
        raise config.error(where, f"unknown environment '{name}'; configured environments: "
                                  f"{', '.join(deploy.names)}")
    metrics = []
    seen: set[str] = set()
    item_schema = schema["properties"]["metrics"]["items"]
    for index, entry in enumerate(section["metrics"]):
        entry = with_defaults(item_schema, entry)
        path = (*base, "metrics", index)
        if entry["name"] in seen:
            raise config.error((*path, "name"), f"metric '{entry['name']}' is listed twice")
        seen.add(entry["name"])
        kind = entry["kind"]
        if kind == "latency" and entry.get("threshold") is None:
            raise config.error(path, f"latency metric '{entry['name']}' needs `threshold` (seconds): the share of "
                                     "requests slower than it is compared")
        from_file = entry.get("outcomes")
        if kind == "custom" and not (entry.get("events-query") or from_file):
            raise config.error(path, f"custom metric '{entry['name']}' needs `events-query` (a Prometheus counter) "
                                     "or `outcomes` (a file or table)")
        if from_file and (entry.get("events-query") or entry.get("requests-query")):
            raise config.error((*path, "outcomes"), f"metric '{entry['name']}' reads its outcomes from Prometheus "
                                                    "queries or from `outcomes`, not both")
        for key in ("events-query", "requests-query", "outcomes"):
            if kind != "custom" and entry.get(key):
                raise config.error((*path, key), f"`{key}` belongs to kind custom, not {kind}")
        if from_file:
            from_file = {**with_defaults(item_schema["properties"]["outcomes"], from_file),
                         "base": str(config.path.parent if config.path else Path("."))}
        metrics.append(Metric(name=entry["name"], kind=kind, better=entry.get("better") or "lower",
                              min_effect=float(entry["min-effect"]), baseline=entry.get("baseline"),
                              threshold=entry.get("threshold"), events_query=entry.get("events-query"),
                              requests_query=entry.get("requests-query"),
                              status_codes=entry.get("status-codes") or ERROR_STATUS_CODES, outcomes=from_file))
    router = section["router"]
    kind = router["type"]
    if kind == "nginx" and env.target not in NGINX_TARGETS:
        raise config.error((*base, "router", "type"),
                           f"router nginx splits between local servers (targets {', '.join(NGINX_TARGETS)}), but "
                           f"'{name}' has target {env.target}")
    if kind in ("kserve", "gateway-api") and env.target != "kubernetes":
        raise config.error((*base, "router", "type"), f"router {kind} needs target kubernetes, but '{name}' has "
                                                     f"target {env.target}")
    if kind == "kserve" and not env.kubernetes.get("kserve", {}).get("enabled"):
        raise config.error((*base, "router", "type"),
                           f"router kserve needs kubernetes.kserve.enabled in environment '{name}'")
    if kind == "gateway-api" and not (router.get("gateway") or {}).get("name"):
        raise config.error((*base, "router"), "router gateway-api needs `gateway: {name: ...}`, the Gateway the "
                                              "HTTPRoute attaches to")
    minimum = _seconds(config, (*base, "min-duration"), section["min-duration"])
    maximum = _seconds(config, (*base, "max-duration"), section["max-duration"])
    if minimum > maximum:
        raise config.error((*base, "min-duration"), f"min-duration ({section['min-duration']}) is longer than "
                                                    f"max-duration ({section['max-duration']})")
    return CanarySettings(
        environment=env, deploy=deploy, mode=section["mode"], percent=float(section["percent"]),
        alpha=float(section["alpha"]), power=float(section["power"]), max_looks=int(section["max-looks"]),
        min_duration=minimum, max_duration=maximum, on_max_duration=section["on-max-duration"],
        baseline_window=_seconds(config, (*base, "baseline-window"), section["baseline-window"]),
        min_baseline_requests=int(section["min-baseline-requests"]),
        wait=_seconds(config, (*base, "wait"), section["wait"]),
        poll=_seconds(config, (*base, "poll"), section["poll"]),
        metrics=tuple(metrics), router=router,
    )
