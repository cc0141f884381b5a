"""Metric directions and deltas (pure)."""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping

from mlci.report.model import BETTER, SAME, UNKNOWN, WORSE, Delta, MetricRow

HIGHER, LOWER = "higher", "lower"

# Name parts that mean "smaller is better" when model.metrics-direction says nothing.
_LOWER_IS_BETTER_WORDS = {
    "loss", "logloss", "error", "err", "rmse", "mse", "mae", "mape", "smape", "rmsle", "msle",
    "latency", "perplexity", "wer", "cer", "fpr", "fnr", "brier",
}
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")


def direction_of(name: str, configured: Mapping[str, str] | None = None) -> str:
    """'higher' or 'lower' for a metric.

    An exact key in model.metrics-direction wins, then the first glob pattern
    that matches (in the order written), then a guess from the name.
    """
    configured = configured or {}
    if name in configured:
        return configured[name]
    for pattern, direction in configured.items():
        if fnmatch.fnmatchcase(name, pattern):
            return direction
    words = set(_WORD_SPLIT.split(name.lower()))
    if words & _LOWER_IS_BETTER_WORDS or name.lower().endswith("loss"):
        return LOWER
    return HIGHER


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare(candidate: float | None, base: float | None, direction: str) -> Delta | None:
    """Delta of candidate against a base value; None when there is no base to compare with."""
    if base is None:
        return None
    if candidate is None or math.isnan(candidate) or math.isnan(base):
        return Delta(None, None, UNKNOWN)
    if math.isinf(candidate) or math.isinf(base):
        if candidate == base:
            return Delta(0.0, 0.0, SAME)
        improved = candidate > base if direction == HIGHER else candidate < base
        return Delta(None, None, BETTER if improved else WORSE)
    absolute = candidate - base
    relative = absolute / abs(base) if base != 0 else None
    # Values that only differ in float noise are the same result.
    if math.isclose(candidate, base, rel_tol=1e-9, abs_tol=1e-12):
        return Delta(0.0, 0.0 if relative is not None else None, SAME)
    improved = absolute > 0 if direction == HIGHER else absolute < 0
    return Delta(absolute, relative, BETTER if improved else WORSE)


def selected(name: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in include) and not any(
        fnmatch.fnmatchcase(name, p) for p in exclude
    )


def metric_rows(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None = None,
    target: Mapping[str, float] | None = None,
    *,
    directions: Mapping[str, str] | None = None,
    include: Iterable[str] = ("*",),
    exclude: Iterable[str] = (),
) -> list[MetricRow]:
    """One row per metric of the candidate (and any metric only a baseline has), sorted by name."""
    include, exclude = tuple(include), tuple(exclude)
    names = set(candidate) | set(champion or {}) | set(target or {})
    rows = []
    for name in sorted(n for n in names if selected(n, include, exclude)):
        direction = direction_of(name, directions)
        value = _number(candidate.get(name))
        champ = _number(champion.get(name)) if champion is not None else None
        tgt = _number(target.get(name)) if target is not None else None
        rows.append(
            MetricRow(
                name=name,
                direction=direction,
                candidate=value,
                champion=champ,
                target=tgt,
                vs_champion=compare(value, champ, direction) if champion is not None else None,
                vs_target=compare(value, tgt, direction) if target is not None else None,
            )
        )
    return rows


def _number(value: object) -> float | None:
    if is_number(value):
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
