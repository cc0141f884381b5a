"""The gate policy: `gate:` in mlci.yml turned into plain, checked dataclasses.

The schema checks types; this module checks what a schema says badly (a
rule that is both absolute and relative, a comparison without a direction)
and reports it at the rule's mlci.yml line.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from mlci.errors import ConfigError, ConfigErrors

BUDGETS = ("model-size-mb", "latency-p50-ms", "latency-p95-ms")
ON_NO_CHAMPION = ("pass", "fail", "absolute-only")
RELATIVE_KEYS = ("max-regression", "max-regression-pct", "min-improvement", "min-improvement-pct")


@dataclass(frozen=True)
class Rule:
    name: str
    subject: str  # metric name or glob, or a budget name
    is_budget: bool = False
    minimum: float | None = None
    maximum: float | None = None
    direction: str | None = None  # relative rules only: higher | lower
    tolerance_key: str | None = None  # one of RELATIVE_KEYS
    tolerance: float | None = None
    severity: str = "error"  # error | warn
    location: str = ""

    @property
    def relative(self) -> bool:
        return self.tolerance_key is not None

    @property
    def kind(self) -> str:
        return ("budget-" if self.is_budget else "") + ("relative" if self.relative else "absolute")

    @property
    def is_pattern(self) -> bool:
        return not self.is_budget and any(ch in self.subject for ch in "*?[")


@dataclass(frozen=True)
class LatencySettings:
    sample: str | None = None
    drop_columns: tuple[str, ...] = ()
    batch_rows: int = 100
    repeats: int = 30
    warmup: int = 3


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    on_no_champion: str = "absolute-only"
    warn_only: bool = False
    champion_marker: str = "champion"
    latency: LatencySettings = field(default_factory=LatencySettings)
    budget_artifact: str = "original"  # original | optimized (the ONNX model mlci optimize logged)

    @property
    def budgets_needed(self) -> set[str]:
        return {r.subject for r in self.rules if r.is_budget}

    @property
    def champion_budgets_needed(self) -> set[str]:
        return {r.subject for r in self.rules if r.is_budget and r.relative}


def _number(value: float) -> str:
    return f"{value:.6g}"


def default_name(rule: Rule) -> str:
    if rule.relative:
        return f"{rule.subject} vs champion ({rule.tolerance_key} {_number(rule.tolerance)})"
    if rule.minimum is not None and rule.maximum is not None:
        return f"{_number(rule.minimum)} <= {rule.subject} <= {_number(rule.maximum)}"
    if rule.minimum is not None:
        return f"{rule.subject} >= {_number(rule.minimum)}"
    return f"{rule.subject} <= {_number(rule.maximum)}"


def direction_for(metric: str, directions: dict[str, str]) -> str | None:
    """model.metrics-direction lookup: exact key first, then the first matching glob."""
    if metric in directions:
        return directions[metric]
    for pattern, direction in directions.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return direction
    return None


def parse_rule(raw: dict[str, Any], *, directions: dict[str, str], where, path: tuple) -> Rule:
    """One rule from its mlci.yml mapping. `where(path)` gives 'mlci.yml:LINE:COL'."""
    location = where(path)

    def fail(message: str, hint: str | None = None, key: str | None = None) -> ConfigError:
        return ConfigError(message, location=where((*path, key)) if key else location, hint=hint)

    has_metric, has_budget = "metric" in raw, "budget" in raw
    if has_metric == has_budget:
        raise fail("a gate rule needs exactly one of 'metric' or 'budget'",
                   hint="e.g. {metric: accuracy, min: 0.8} or {budget: latency-p95-ms, max: 50}")
    subject = raw["metric"] if has_metric else raw["budget"]
    tolerances = [key for key in RELATIVE_KEYS if key in raw]
    absolute = [key for key in ("min", "max") if key in raw]
    if tolerances and absolute:
        raise fail(f"rule for {subject!r} mixes absolute ({', '.join(absolute)}) and champion-relative "
                   f"({', '.join(tolerances)}) thresholds", hint="split it into two rules")
    if len(tolerances) > 1:
        raise fail(f"rule for {subject!r} has several champion tolerances ({', '.join(tolerances)}); use one")
    if not tolerances and not absolute:
        raise fail(f"rule for {subject!r} has no threshold",
                   hint="add min/max (absolute) or max-regression, max-regression-pct, min-improvement or "
                   "min-improvement-pct (versus the champion)")
    if has_budget and "min" in raw:
        raise fail(f"budget {subject} takes max, not min (lower is better)", key="min")
    if "min" in raw and "max" in raw and raw["min"] > raw["max"]:
        raise fail(f"min {raw['min']} is greater than max {raw['max']}; no value can pass", key="min")
    direction = None
    if tolerances:
        if has_budget:
            if raw.get("direction", "lower") != "lower":
                raise fail(f"budget {subject} is lower-is-better; direction cannot be changed", key="direction")
            direction = "lower"
        else:
            direction = raw.get("direction") or direction_for(subject, directions)
            if direction is None:
                raise fail(
                    f"comparison of {subject!r} with the champion needs a direction",
                    hint=f"add 'direction: higher|lower' to the rule, "
                    f"or model.metrics-direction: {{{subject}: higher}}",
                )
    elif "direction" in raw:
        raise fail("direction only applies to champion comparisons (max-regression, min-improvement, ...)",
                   key="direction")
    rule = Rule(
        name="",
        subject=subject,
        is_budget=has_budget,
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        direction=direction,
        tolerance_key=tolerances[0] if tolerances else None,
        tolerance=raw[tolerances[0]] if tolerances else None,
        severity=raw.get("severity", "error"),
        location=location,
    )
    return dataclasses.replace(rule, name=raw.get("name") or default_name(rule))


def policy_from_config(config, *, warn_only: bool | None = None) -> Policy:
    """The Policy from the effective config; every rule problem at once, located."""
    gate = config.section("gate") or {}
    directions = dict(config.get("model", "metrics-direction", default={}) or {})
    rules: list[Rule] = []
    problems: list[ConfigError] = []
    for index, raw in enumerate(gate.get("rules") or []):
        try:
            rules.append(parse_rule(raw, directions=directions, where=config.where, path=("gate", "rules", index)))
        except ConfigError as exc:
            problems.append(exc)
    if problems:
        raise ConfigErrors(problems)
    seen: dict[str, int] = {}
    unique = []
    for rule in rules:  # JUnit test names must be distinct to show as separate tests
        seen[rule.name] = seen.get(rule.name, 0) + 1
        renamed = f"{rule.name} #{seen[rule.name]}"
        unique.append(rule if seen[rule.name] == 1 else dataclasses.replace(rule, name=renamed))
    latency = gate.get("latency") or {}
    return Policy(
        rules=tuple(unique),
        on_no_champion=gate.get("on-no-champion", "absolute-only"),
        warn_only=bool(gate.get("warn-only", False)) if warn_only is None else warn_only,
        champion_marker=gate.get("champion-marker", "champion"),
        budget_artifact=gate.get("budget-artifact", "original"),
        latency=LatencySettings(
            sample=latency.get("sample"),
            drop_columns=tuple(latency.get("drop-columns") or ()),
            batch_rows=int(latency.get("batch-rows", 100)),
            repeats=int(latency.get("repeats", 30)),
            warmup=int(latency.get("warmup", 3)),
        ),
    )
