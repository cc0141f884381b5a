"""Monitoring rules as data: settings from mlci.yml, PromQL with placeholders filled in.

Presets are queries on MLServer's own metrics: `rest_server_requests_total`
(label status_code) and the histogram `rest_server_request_duration_seconds`,
both with the path of the route, restricted here to the inference routes
(MLflow's /invocations and the Open Inference Protocol's /v2/.../infer).
The deployment's labels (model_name, model_version, environment) come from
the scrape target: mlci's mlserver target writes them into its file_sd file,
the Kubernetes manifests into pod labels that the ServiceMonitor copies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from string import Template
from typing import Any

from mlci.errors import ConfigError

INFERENCE_PATHS = 'path=~"/invocations|/v2/models/.+/infer"'
PRESETS: dict[str, tuple[str, str]] = {
    # name -> (query, unit)
    "error-rate": (
        f'(sum(rate(rest_server_requests_total{{{INFERENCE_PATHS},status_code=~"$status_codes",$selector}}[$window])) '
        f'or vector(0)) / sum(rate(rest_server_requests_total{{{INFERENCE_PATHS},$selector}}[$window]))',
        "ratio",
    ),
    "latency-p50": (
        "histogram_quantile(0.5, sum by (le) (rate(rest_server_request_duration_seconds_bucket"
        f"{{{INFERENCE_PATHS},$selector}}[$window])))",
        "seconds",
    ),
    "latency-p95": (
        "histogram_quantile(0.95, sum by (le) (rate(rest_server_request_duration_seconds_bucket"
        f"{{{INFERENCE_PATHS},$selector}}[$window])))",
        "seconds",
    ),
    "latency-p99": (
        "histogram_quantile(0.99, sum by (le) (rate(rest_server_request_duration_seconds_bucket"
        f"{{{INFERENCE_PATHS},$selector}}[$window])))",
        "seconds",
    ),
    "request-rate": (
        f"sum(rate(rest_server_requests_total{{{INFERENCE_PATHS},$selector}}[$window]))",
        "requests/s",
    ),
}
# MLServer answers 400 when the model itself raises, so a failing model shows as 4xx, not only 5xx.
ERROR_STATUS_CODES = "4..|5.."
REQUESTS_QUERY = f"sum(increase(rest_server_requests_total{{{INFERENCE_PATHS},$selector}}[$window]))"

def preset_query(name: str, *, status_codes: str = ERROR_STATUS_CODES) -> tuple[str, str]:
    """A preset's PromQL (placeholders for labels and window left in) and its unit."""
    query, unit = PRESETS[name]
    # The codes are a setting, filled in now; the other placeholders are labels, filled in per evaluation.
    return query.replace("$status_codes", status_codes), unit


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """Seconds in a PromQL duration such as 15m or 1h30m."""
    parts = _DURATION.findall(text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{text!r} is not a PromQL duration such as 30s, 15m or 1h30m")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


@dataclass(frozen=True)
class Regression:
    max_increase_pct: float | None = None
    max_decrease_pct: float | None = None
    baseline_window: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    query: str  # with placeholders
    window: str
    min: float | None = None
    max: float | None = None
    regression: Regression | None = None
    action: str = "rollback"
    severity: str = "critical"
    for_: str | None = None
    unit: str = ""
    preset: str | None = None
    where: str = ""  # mlci.yml location

    @property
    def baseline_window(self) -> str:
        return (self.regression.baseline_window if self.regression else None) or self.window

    def describe_threshold(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.regression:
            if self.regression.max_increase_pct is not None:
                parts.append(f"at most +{self.regression.max_increase_pct:g}% over the previous version")
            if self.regression.max_decrease_pct is not None:
                parts.append(f"at most -{self.regression.max_decrease_pct:g}% under the previous version")
        return ", ".join(parts)


@dataclass(frozen=True)
class Labels:
    """What the placeholders stand for in one evaluation."""

    model: str
    version: str
    environment: str

    def mapping(self, selector_template: str, window: str) -> dict[str, str]:
        values = {"model": _label_value(self.model), "version": _label_value(self.version),
                  "environment": _label_value(self.environment), "window": window}
        values["selector"] = Template(selector_template).safe_substitute(values)
        return values


def _label_value(value: str) -> str:
    # Inside a PromQL label matcher string: escape what would end or break it.
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_query(query: str, labels: Labels, *, selector: str, window: str) -> str:
    return Template(query).safe_substitute(labels.mapping(selector, window))


@dataclass(frozen=True)
class DriftSettings:
    logs: tuple[str, ...] = ()
    format: str | None = None
    reference: str | None = None
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    prediction_column: str | None = None
    target_column: str | None = None
    min_rows: int = 200
    action: str = "retrain"


@dataclass(frozen=True)
class MonitorSettings:
    prometheus: dict[str, Any]
    selector: str
    window: str
    min_requests: int
    requests_query: str
    rules: tuple[Rule, ...]
    drift: DriftSettings
    auto_rollback: bool
    retrain: bool
    retrain_ref: str | None
    incident: dict[str, Any] = field(default_factory=dict)


def load_monitor_settings(config) -> MonitorSettings:
    section = config.section("monitor") or {}
    window = section.get("window") or "15m"
    duration_seconds(window)
    rules = []
    for index, raw in enumerate(section.get("rules") or []):
        path = ("monitor", "rules", index)
        where = config.where(path)
        if bool(raw.get("preset")) == bool(raw.get("query")):
            raise config.error(path, f"rule '{raw.get('name')}' needs exactly one of `preset` or `query`")
        regression = raw.get("regression")
        if raw.get("min") is None and raw.get("max") is None and not regression:
            raise config.error(path, f"rule '{raw['name']}' has no threshold: set min, max or regression")
        if regression is not None and regression.get("max-increase-pct") is None and \
                regression.get("max-decrease-pct") is None:
            raise config.error((*path, "regression"),
                               f"rule '{raw['name']}': regression needs max-increase-pct or max-decrease-pct")
        if raw.get("status-codes") is not None and raw.get("preset") != "error-rate":
            raise config.error((*path, "status-codes"),
                               f"rule '{raw['name']}': status-codes only applies to the error-rate preset")
        query, unit = (preset_query(raw["preset"], status_codes=raw.get("status-codes") or ERROR_STATUS_CODES)
                       if raw.get("preset") else (raw["query"], ""))
        rules.append(Rule(
            name=raw["name"], query=query, window=raw.get("window") or window, min=raw.get("min"),
            max=raw.get("max"),
            regression=Regression(regression.get("max-increase-pct"), regression.get("max-decrease-pct"),
                                  regression.get("baseline-window")) if regression else None,
            action=raw.get("action", "rollback"), severity=raw.get("severity", "critical"), for_=raw.get("for"),
            unit=unit, preset=raw.get("preset"), where=where,
        ))
    names = [rule.name for rule in rules]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise config.error(("monitor", "rules"), f"two rules are named '{duplicate}'")
    drift = section.get("drift") or {}
    data_drift = config.get("data", "drift") or {}
    return MonitorSettings(
        prometheus=section.get("prometheus") or {},
        selector=section.get("selector") or 'model_name="$model",model_version="$version",environment="$environment"',
        window=window,
        min_requests=int(section.get("min-requests", 100)),
        requests_query=section.get("requests-query") or REQUESTS_QUERY,
        rules=tuple(rules),
        drift=DriftSettings(
            logs=tuple(drift.get("logs") or ()),
            format=drift.get("format"),
            reference=drift.get("reference") or data_drift.get("reference"),
            columns=tuple(drift["columns"]) if drift.get("columns") is not None else
            (tuple(data_drift["columns"]) if data_drift.get("columns") else None),
            exclude=tuple(drift["exclude"]) if drift.get("exclude") is not None else
            (tuple(data_drift["exclude"]) if data_drift.get("exclude") else None),
            prediction_column=drift.get("prediction-column"),
            target_column=drift.get("target-column") or drift.get("prediction-column"),
            min_rows=int(drift.get("min-rows", 200)),
            action=drift.get("action", "retrain"),
        ),
        auto_rollback=bool(section.get("auto-rollback", False)),
        retrain=bool(section.get("retrain", True)),
        retrain_ref=section.get("retrain-ref"),
        incident=section.get("incident") or {"enabled": True, "on": ["rollback", "retrain"],
                                             "labels": ["mlci::monitor"]},
    )


def alert_rules(settings: MonitorSettings, *, model: str, environments: list[str]) -> dict[str, Any]:
    """A Prometheus alerting-rules document (one group per environment) for the threshold rules.

    The alert follows whichever version serves the environment (model_version is not matched);
    regression rules compare two versions chosen from the registry and stay with `mlci monitor`.
    """
    groups = []
    for environment in environments:
        rules = []
        selector = re.sub(r',?\s*model_version\s*=~?\s*"\$version"', "", settings.selector).strip(",")
        labels = Labels(model=model, version="", environment=environment)
        for rule in settings.rules:
            if rule.regression is not None or (rule.min is None and rule.max is None):
                continue
            expr = render_query(rule.query, labels, selector=selector, window=rule.window)
            conditions = []
            if rule.max is not None:
                conditions.append(f"({expr}) > {rule.max:g}")
            if rule.min is not None:
                conditions.append(f"({expr}) < {rule.min:g}")
            rules.append({
                "alert": "Mlci" + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", rule.name) if part),
                "expr": " or ".join(conditions),
                "for": rule.for_ or rule.window,
                "labels": {"severity": rule.severity, "mlci_action": rule.action, "model_name": model,
                           "environment": environment},
                "annotations": {
                    "summary": f"{model} in {environment}: {rule.name} outside {rule.describe_threshold()}",
                    "description": f"mlci monitor rule '{rule.name}' ({rule.unit or 'value'} {{{{ $value }}}}); "
                                   f"run `mlci monitor --env {environment}` (or a monitor pipeline) to decide "
                                   f"on {rule.action}.",
                },
            })
        if rules:
            groups.append({"name": f"mlci-{model}-{environment}", "rules": rules})
    return {"groups": groups}
