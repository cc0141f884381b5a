"""The canary decision: promote, rollback or continue, from per-version counts and the persisted state.

Pure: the state (a JSON-able dict persisted on the canary version in the
registry) and the counts go in; the analysis and the next state come out. Every
run of `mlci canary analyze` calls `analyze` once, and a run that takes a look
stores it, so running analyze again is a new look, never a free one.

Canary mode, per metric (a one-sided question: is the new version worse?):
- a look is taken when the metric's information fraction reaches the next
  planned one (k / max-looks, at least 1 / (2 max-looks) after the previous
  look); other runs report the numbers and test nothing;
- at a look, statsmodels' pooled two-proportion z-test; the metric shows harm
  when z reaches the look's boundary (mlci.canary.design), with the family
  alpha split evenly over the metrics (Bonferroni);
- the look at information >= 1 is the last: no crossing there completes the metric.
Decision: rollback as soon as one metric shows harm; promote once every metric
completed (and min-duration passed); rollback (or what on-max-duration says)
at max-duration; continue otherwise. Holm's step-down would reject nothing
more here: the first rejection already ends the experiment.

A/B mode: a fixed horizon (each metric's single-test sample size, or
max-duration), one two-sided test per metric at alpha / M at the horizon, and
before it only descriptive numbers. The decision is a recommendation; it is
never acted on automatically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlci.canary import design

PROMOTE, ROLLBACK, CONTINUE = "promote", "rollback", "continue"
CANARY, AB = "canary", "ab"
RATE_FLOOR = 1e-4


@dataclass(frozen=True)
class Counts:
    """Events (errors, slow requests, successes) out of requests, per version, since the canary started."""

    canary_events: int
    canary_n: int
    stable_events: int
    stable_n: int

    def __post_init__(self):
        for events, n, who in ((self.canary_events, self.canary_n, "canary"),
                               (self.stable_events, self.stable_n, "stable")):
            if n < 0 or events < 0 or events > n:
                raise ValueError(f"{who}: {events} events out of {n} requests is not a count")

    @property
    def canary_rate(self) -> float | None:
        return self.canary_events / self.canary_n if self.canary_n else None

    @property
    def stable_rate(self) -> float | None:
        return self.stable_events / self.stable_n if self.stable_n else None

    def to_json(self) -> dict[str, Any]:
        return {"canary": {"events": self.canary_events, "requests": self.canary_n, "rate": self.canary_rate},
                "stable": {"events": self.stable_events, "requests": self.stable_n, "rate": self.stable_rate}}


@dataclass
class MetricResult:
    name: str
    kind: str
    better: str
    status: str  # harm | better | complete | no-difference | running | no-data
    information: float = 0.0
    counts: Counts | None = None
    difference: float | None = None  # canary rate - stable rate
    relative: float | None = None  # difference / stable rate
    ci: tuple[float, float] | None = None
    ci_level: float | None = None
    repeated_ci: tuple[float, float] | None = None
    look: dict[str, Any] | None = None  # the look this run took, else None
    last_look: dict[str, Any] | None = None
    next_look: float | None = None
    looks: int = 0
    design: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    effect_args: tuple[float, float | None] | None = None  # (CI level, critical value) for estimate()

    def estimate(self) -> MetricResult:
        """Fill in the effect size and its intervals (statsmodels); kept out of `analyze`, which decides."""
        if self.counts is not None and self.effect_args is not None and self.ci is None:
            _effect(self, self.counts, *self.effect_args)
        return self

    def to_json(self) -> dict[str, Any]:
        self.estimate()
        return {
            "name": self.name, "kind": self.kind, "better": self.better, "status": self.status,
            "information": _round(self.information), "looks": self.looks, "next-look": _round(self.next_look),
            "samples": self.counts.to_json() if self.counts else None,
            "effect": {"difference": _round(self.difference), "relative": _round(self.relative),
                       "ci": [_round(v) for v in self.ci] if self.ci else None,
                       "ci-level": self.ci_level, "ci-method": "Newcombe (statsmodels), not adjusted for looks",
                       "repeated-ci": [_round(v) for v in self.repeated_ci] if self.repeated_ci else None},
            "test": self.look or self.last_look,
            "tested-this-run": self.look is not None,
            "design": self.design,
            "reason": self.reason,
        }


@dataclass
class Analysis:
    decision: str
    rule: str
    mode: str
    elapsed: float
    metrics: list[MetricResult]
    state: dict[str, Any]
    looked: bool
    decided_before: bool = False

    @property
    def min_p(self) -> float | None:
        values = [m.look["p"] for m in self.metrics if m.look and m.look.get("p") is not None]
        return min(values) if values else None


def _round(value, digits: int = 6):
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return round(float(value), digits)


def family_alpha(state: dict[str, Any]) -> float:
    """Each metric's share of the family-wise alpha (Bonferroni)."""
    return float(state["settings"]["alpha"]) / max(1, len(state["metrics"]))


def ratio(state: dict[str, Any]) -> float:
    """Stable requests per canary request under the configured split."""
    percent = float(state["percent"])
    return (100.0 - percent) / percent


def plan_metric(state: dict[str, Any], name: str, *, baseline: float, source: str,
                threshold: float | None = None) -> dict[str, Any]:
    """The design of one metric, fixed once (from data before the canary started, or configuration)."""
    settings = state["settings"]
    metric = state["metrics"][name]
    alpha = family_alpha(state)
    power = float(settings["power"])
    looks = int(settings["max-looks"])
    ab = state["mode"] == AB
    # A measured rate of exactly 0 (or 1) only says that nothing happened in the baseline window.
    rate = min(max(float(baseline), RATE_FLOOR), 1.0 - RATE_FLOOR)
    fixed = design.fixed_sample_size(baseline=rate, min_effect=float(metric["min-effect"]), better=metric["better"],
                                     alpha=alpha, power=power, ratio=ratio(state),
                                     alternative="two-sided" if ab else "larger")
    inflation = 1.0 if ab else design.inflation_factor(looks, alpha, power)
    n_canary = fixed * inflation
    return {"baseline": rate, "baseline-source": source, "alpha": alpha, "power": power,
            "inflation": inflation, "n-canary": math.ceil(n_canary),
            "n-stable": math.ceil(n_canary * ratio(state)), "n-fixed-canary": math.ceil(fixed),
            "max-looks": 1 if ab else looks, "threshold": threshold,
            "test": "two-sided two-proportion z-test at the horizon" if ab else
            "one-sided two-proportion z-test, O'Brien-Fleming-type alpha spending"}


def new_state(*, mode: str, environment: str, stable: str, canary: str, percent: float,
              settings: dict[str, Any], metrics: dict[str, dict[str, Any]], started_at: datetime) -> dict[str, Any]:
    """The persisted state of a new experiment; `metrics` maps names to {kind, better, min-effect, baseline, ...}.

    Each metric's design is fixed here, once: a design that changed with the data would spend alpha twice.
    """
    if mode not in (CANARY, AB):
        raise ValueError(f"mode must be {CANARY} or {AB}, not {mode!r}")
    if not 0.0 < float(percent) < 100.0:
        raise ValueError(f"the new version's share of traffic must be between 0 and 100 percent, not {percent}")
    state: dict[str, Any] = {
        "version": 1, "mode": mode, "environment": environment, "stable": str(stable), "canary": str(canary),
        "percent": float(percent), "started-at": started_at.isoformat(timespec="seconds"),
        "settings": {key: settings[key] for key in ("alpha", "power", "max-looks", "min-duration", "max-duration",
                                                    "on-max-duration")},
        "metrics": {name: {key: value for key, value in metric.items() if key not in ("baseline", "baseline-source")}
                    for name, metric in metrics.items()},
    }
    for name, metric in metrics.items():
        state["metrics"][name]["design"] = plan_metric(state, name, baseline=float(metric["baseline"]),
                                                       source=str(metric.get("baseline-source", "configured")),
                                                       threshold=metric.get("threshold"))
        state["metrics"][name]["looks"] = []
    return state


def information(metric_design: dict[str, Any], counts: Counts | None) -> float:
    if counts is None:
        return 0.0
    planned = design.effective_n(metric_design["n-canary"], metric_design["n-stable"])
    return design.effective_n(counts.canary_n, counts.stable_n) / planned if planned else 0.0


def next_look(looks: list[list[float]], max_looks: int) -> float | None:
    """The information fraction at which the next look is due; None after the last look."""
    last = looks[-1][0] if looks else 0.0
    if last >= 1.0:
        return None
    planned = 1.0 if len(looks) + 1 >= max_looks else (len(looks) + 1) / max_looks
    return max(planned, last + 1.0 / (2 * max_looks))


def _ztest(counts: Counts, better: str, *, two_sided: bool = False) -> tuple[float, float]:
    """(z oriented so that positive means the canary is worse, p-value) from statsmodels."""
    from statsmodels.stats.proportion import proportions_ztest

    events = counts.canary_events + counts.stable_events
    total = counts.canary_n + counts.stable_n
    if events == 0 or events == total:
        return 0.0, 1.0 if two_sided else 0.5  # no variance: no evidence either way
    alternative = "two-sided" if two_sided else ("larger" if better == "lower" else "smaller")
    z, p = proportions_ztest([counts.canary_events, counts.stable_events], [counts.canary_n, counts.stable_n],
                             alternative=alternative)
    return (float(z) if better == "lower" else -float(z)), float(p)


def _effect(result: MetricResult, counts: Counts, level: float, critical: float | None) -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep

    if not counts.canary_n or not counts.stable_n:
        return
    result.difference = counts.canary_rate - counts.stable_rate
    result.relative = result.difference / counts.stable_rate if counts.stable_rate else None
    low, high = confint_proportions_2indep(counts.canary_events, counts.canary_n, counts.stable_events,
                                           counts.stable_n, method="newcombe", compare="diff", alpha=1.0 - level)
    result.ci, result.ci_level = (float(low), float(high)), level
    if critical is not None:
        # Repeated confidence interval (Jennison & Turnbull ch. 9): valid whenever it is looked at.
        se = math.sqrt(counts.canary_rate * (1 - counts.canary_rate) / counts.canary_n
                       + counts.stable_rate * (1 - counts.stable_rate) / counts.stable_n)
        width = critical * se if math.isfinite(critical) else math.inf
        result.repeated_ci = (result.difference - width, result.difference + width)


def _look_json(look: list[float], number: int, alpha: float) -> dict[str, Any]:
    t, critical, z, p, n_canary, n_stable = look
    return {"look": number, "information": _round(t), "boundary-z": _round(critical),
            "nominal-alpha": _round(design.normal_sf(critical) if math.isfinite(critical) else 0.0, 8),
            "alpha-spent": _round(design.spent(t, alpha), 8), "alpha": alpha, "z": _round(z), "p": float(p),
            "requests-canary": int(n_canary), "requests-stable": int(n_stable)}


def _canary_metric(name: str, metric: dict[str, Any], counts: Counts | None, state: dict[str, Any],
                   looks_allowed: bool) -> tuple[MetricResult, bool]:
    planned = metric["design"]
    alpha = planned["alpha"]
    max_looks = int(planned["max-looks"])
    looks: list[list[float]] = metric.setdefault("looks", [])
    result = MetricResult(name=name, kind=metric["kind"], better=metric["better"], status="running",
                          counts=counts, design=planned, looks=len(looks))
    if looks and looks[-1][1] <= looks[-1][2]:
        result.status = "harm"
    elif looks and looks[-1][0] >= 1.0:
        result.status = "complete"
    if looks:
        result.last_look = _look_json(looks[-1], len(looks), alpha)
    if counts is None or not counts.canary_n or not counts.stable_n:
        if result.status == "running":
            result.status = "no-data"
        result.reason = "no requests of one of the versions yet" if counts else "no data"
        result.next_look = next_look(looks, max_looks)
        return result, False
    result.information = information(planned, counts)
    due = next_look(looks, max_looks)
    result.next_look = due
    took = False
    if result.status == "running" and looks_allowed and due is not None and result.information >= due:
        t = result.information
        critical = design.critical_value([look[0] for look in looks], [look[1] for look in looks], t, alpha,
                                         design.grid_step(max_looks))
        z, p = _ztest(counts, metric["better"])
        looks.append([t, critical, z, p, counts.canary_n, counts.stable_n])
        result.look = _look_json(looks[-1], len(looks), alpha)
        result.looks = len(looks)
        result.next_look = next_look(looks, max_looks)
        took = True
        if z >= critical:
            result.status = "harm"
        elif t >= 1.0:
            result.status = "complete"
    result.effect_args = (1.0 - float(state["settings"]["alpha"]), looks[-1][1] if looks else None)
    word = "higher" if metric["better"] == "lower" else "lower"
    if result.status == "harm":
        look = result.look or result.last_look
        result.reason = (f"the new version's rate is {word}: z = {look['z']:.3f} reached the boundary "
                         f"{look['boundary-z']:.3f} at look {look['look']} (information {look['information']:.2f}; "
                         f"one-sided p = {look['p']:.3g} <= {look['nominal-alpha']:.3g})")
    elif result.status == "complete":
        result.reason = (f"planned sample reached without crossing a boundary ({result.looks} looks); a "
                         f"{word} rate by {metric['min-effect']:g} would have been found with probability "
                         f"{planned['power']:g}")
    elif result.look is not None:
        result.reason = (f"look {result.looks}: z = {result.look['z']:.3f} below the boundary "
                         f"{result.look['boundary-z']:.3f}; next look at information {result.next_look:.2f}")
    else:
        result.reason = f"information {result.information:.2f}; next look at {due:.2f}" if due else ""
    return result, took


def _ab_metric(name: str, metric: dict[str, Any], counts: Counts | None, state: dict[str, Any],
               horizon: bool) -> tuple[MetricResult, bool]:
    planned = metric["design"]
    alpha = planned["alpha"]
    looks: list[list[float]] = metric.setdefault("looks", [])
    result = MetricResult(name=name, kind=metric["kind"], better=metric["better"], status="running",
                          counts=counts, design=planned, looks=len(looks), next_look=1.0)
    if counts is None or not counts.canary_n or not counts.stable_n:
        result.status, result.reason = "no-data", "no requests of one of the versions yet"
        return result, False
    result.information = information(planned, counts)
    critical = design.normal_isf(alpha / 2.0)
    took = False
    if horizon and not looks:
        z, p = _ztest(counts, metric["better"], two_sided=True)
        looks.append([result.information, critical, z, p, counts.canary_n, counts.stable_n])
        took = True
    if looks:
        t, critical, z, p, n_canary, n_stable = looks[-1]
        result.look = {"look": 1, "information": _round(t), "boundary-z": _round(critical), "alpha": alpha,
                       "nominal-alpha": alpha, "z": _round(z), "p": float(p), "alternative": "two-sided",
                       "requests-canary": int(n_canary), "requests-stable": int(n_stable)} if took else None
        result.last_look = result.look or {"look": 1, "information": _round(t), "z": _round(z), "p": float(p),
                                           "boundary-z": _round(critical), "alpha": alpha}
        result.looks = 1
        result.next_look = None
        if p <= alpha:
            result.status = "harm" if z > 0 else "better"
        else:
            result.status = "no-difference"
        result.reason = (f"two-sided p = {p:.3g} {'<=' if p <= alpha else '>'} {alpha:.3g} "
                         f"(alpha / {len(state['metrics'])} metrics)"
                         + (f"; underpowered: information {t:.2f} of 1" if t < 1.0 else ""))
        result.effect_args = (1.0 - alpha, None)
    else:
        result.effect_args = (1.0 - float(state["settings"]["alpha"]), None)
        result.reason = f"information {result.information:.2f} of 1: not tested before the horizon"
    return result, took


def _elapsed(state: dict[str, Any], now: datetime) -> float:
    started = datetime.fromisoformat(state["started-at"].replace("Z", "+00:00"))
    return max(0.0, (now - started).total_seconds())


def analyze(state: dict[str, Any], counts: dict[str, Counts | None], now: datetime) -> Analysis:
    """One run of the analysis. `state` is updated in place (looks, decision) and returned in the result."""
    settings = state["settings"]
    elapsed = _elapsed(state, now)
    mode = state["mode"]
    previous = state.get("decision")
    if previous:
        # Decided earlier (a retried job): report it again, take no new look.
        metrics = [_canary_metric(name, metric, counts.get(name), state, False)[0] if mode == CANARY
                   else _ab_metric(name, metric, counts.get(name), state, False)[0]
                   for name, metric in state["metrics"].items()]
        return Analysis(previous["decision"], previous["rule"], mode, elapsed, metrics, state, looked=False,
                        decided_before=True)
    over_time = elapsed >= float(settings["max-duration"])
    early = elapsed < float(settings["min-duration"])
    results: list[MetricResult] = []
    looked = False
    if mode == CANARY:
        for name, metric in state["metrics"].items():
            result, took = _canary_metric(name, metric, counts.get(name), state, True)
            results.append(result)
            looked |= took
        decision, rule = _canary_decision(results, settings, elapsed, over_time, early)
    else:
        informed = all(information(m["design"], counts.get(n)) >= 1.0 for n, m in state["metrics"].items())
        horizon = over_time or (informed and not early)
        for name, metric in state["metrics"].items():
            result, took = _ab_metric(name, metric, counts.get(name), state, horizon)
            results.append(result)
            looked |= took
        decision, rule = _ab_decision(results, state, horizon, over_time)
    if decision != CONTINUE:
        state["decision"] = {"decision": decision, "rule": rule, "at": now.isoformat(timespec="seconds"),
                             "elapsed": round(elapsed, 1)}
    return Analysis(decision, rule, mode, elapsed, results, state, looked)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def _canary_decision(results: list[MetricResult], settings: dict[str, Any], elapsed: float, over_time: bool,
                     early: bool) -> tuple[str, str]:
    harmed = [r for r in results if r.status == "harm"]
    if harmed:
        first = harmed[0]
        return ROLLBACK, f"{first.name}: {first.reason}"
    if all(r.status == "complete" for r in results):
        if not early:
            return PROMOTE, ("every metric reached its planned sample without crossing its boundary: "
                             + "; ".join(f"{r.name} ({r.looks} looks)" for r in results))
        if not over_time:
            return CONTINUE, (f"every metric is complete; waiting for min-duration "
                              f"({_duration(float(settings['min-duration']))}, {_duration(elapsed)} so far)")
    if over_time:
        outcome = settings.get("on-max-duration", ROLLBACK)
        lagging = ", ".join(f"{r.name} at information {r.information:.2f}" for r in results
                            if r.status != "complete")
        return outcome, (f"max-duration {_duration(float(settings['max-duration']))} reached before the planned "
                         f"sample ({lagging}): on-max-duration is {outcome}")
    waiting = [r for r in results if r.status != "complete"]
    return CONTINUE, "; ".join(f"{r.name}: {r.reason or r.status}" for r in waiting)


def _ab_decision(results: list[MetricResult], state: dict[str, Any], horizon: bool,
                 over_time: bool) -> tuple[str, str]:
    if not horizon:
        lagging = ", ".join(f"{r.name} {r.information:.2f}" for r in results)
        return CONTINUE, f"A/B test before its horizon (information {lagging}); nothing is tested yet"
    worse = [r for r in results if r.status == "harm"]
    better = [r for r in results if r.status == "better"]
    stable = state["stable"]
    suffix = " (horizon reached by max-duration)" if over_time else ""
    if worse:
        return ROLLBACK, f"A/B: the new version is significantly worse on {worse[0].name}: {worse[0].reason}{suffix}"
    if better:
        return PROMOTE, (f"A/B: the new version is significantly better on "
                         f"{', '.join(r.name for r in better)} and worse on none{suffix}; promote by hand")
    return ROLLBACK, f"A/B: no significant difference on any metric{suffix}: keep version {stable}"
