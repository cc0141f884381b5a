"""Parity between the original and the optimized model: arrays in, named checks out.

Pure (numpy, and scikit-learn's metrics for the optional metric check). A
check fails on NaN, on outputs of different shapes and on tolerances
exceeded; a value exactly at a tolerance passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlci.optimize.settings import HIGHER_IS_BETTER, ParityTolerances

PASSED, FAILED = "passed", "failed"


@dataclass(frozen=True)
class ParityCheck:
    name: str  # max-abs-diff | agreement | metric-delta
    status: str
    observed: float | None
    threshold: float | None
    message: str


@dataclass(frozen=True)
class ModelOutputs:
    """What one model answered on the sample: class labels (classifiers) and continuous outputs."""

    labels: Any = None  # numpy array [rows] or None
    scores: Any = None  # numpy array [rows] or [rows, k], or None


@dataclass
class ParityResult:
    rows: int
    task: str
    checks: list[ParityCheck] = field(default_factory=list)
    metric: dict[str, Any] | None = None  # name, original, optimized, delta

    @property
    def passed(self) -> bool:
        return all(check.status == PASSED for check in self.checks)

    @property
    def failures(self) -> list[ParityCheck]:
        return [check for check in self.checks if check.status == FAILED]

    def value(self, name: str) -> float | None:
        return next((c.observed for c in self.checks if c.name == name), None)


def _at_most(value: float, limit: float) -> bool:
    return value <= limit or math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12)


def max_abs_diff(original, optimized) -> tuple[float | None, str]:
    """(largest |a - b|, problem); the value is None when the outputs cannot be compared."""
    import numpy as np

    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(optimized, dtype=np.float64)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if b.ndim == 2 and b.shape[1] == 1:
        b = b[:, 0]
    if a.shape != b.shape:
        return None, f"output shapes differ: original {tuple(a.shape)}, optimized {tuple(b.shape)}"
    if a.size == 0:
        return None, "no outputs to compare"
    if np.isnan(b).any() and not np.isnan(a).any():
        return math.nan, "the optimized model returned NaN"
    return float(np.nanmax(np.abs(a - b))), ""


def metric_value(name: str, y_true, outputs: ModelOutputs) -> float:
    import numpy as np
    from sklearn import metrics

    if name in ("accuracy", "f1"):
        labels = outputs.labels
        if name == "accuracy":
            return float(metrics.accuracy_score(y_true, labels))
        positive = np.max(np.unique(np.concatenate([np.asarray(y_true), np.asarray(labels)])))
        return float(metrics.f1_score(y_true, labels, pos_label=positive))
    if name in ("roc_auc", "log_loss"):
        scores = np.asarray(outputs.scores, dtype=np.float64)
        if scores.ndim != 2:
            raise ValueError(f"{name} needs class probabilities, the model returned shape {scores.shape}")
        if name == "log_loss":
            return float(metrics.log_loss(y_true, scores))
        return float(metrics.roc_auc_score(y_true, scores[:, -1]))
    predictions = np.asarray(outputs.scores, dtype=np.float64).reshape(len(y_true), -1)[:, 0]
    if name == "mae":
        return float(metrics.mean_absolute_error(y_true, predictions))
    if name == "rmse":
        return float(math.sqrt(metrics.mean_squared_error(y_true, predictions)))
    return float(metrics.r2_score(y_true, predictions))


def compare(original: ModelOutputs, optimized: ModelOutputs, *, task: str, tolerances: ParityTolerances,
            y_true=None) -> ParityResult:
    import numpy as np

    rows = len(original.labels if original.labels is not None else original.scores)
    result = ParityResult(rows=rows, task=task)

    limit = tolerances.max_abs_diff
    what = "class probabilities" if task == "classification" and original.labels is not None else "outputs"
    if original.scores is None or optimized.scores is None:
        missing = "original" if original.scores is None else "optimized"
        result.checks.append(ParityCheck("max-abs-diff", FAILED, None, limit,
                                         f"the {missing} model gave no continuous output to compare"))
    else:
        diff, problem = max_abs_diff(original.scores, optimized.scores)
        if diff is None or math.isnan(diff):
            result.checks.append(ParityCheck("max-abs-diff", FAILED, diff, limit, problem))
        else:
            ok = _at_most(diff, limit)
            result.checks.append(ParityCheck(
                "max-abs-diff", PASSED if ok else FAILED, diff, limit,
                f"max |original - optimized| of the {what} over {rows} rows = {diff:.3g} "
                f"({'<=' if ok else '>'} {limit:g})"))

    if task == "classification":
        wanted = tolerances.min_agreement
        a, b = np.asarray(original.labels).reshape(-1), np.asarray(optimized.labels).reshape(-1)
        if a.shape != b.shape:
            result.checks.append(ParityCheck("agreement", FAILED, None, wanted,
                                             f"{len(b)} predicted classes for {len(a)} rows"))
        else:
            rate = float((a == b).mean()) if len(a) else 0.0
            differing = int((a != b).sum())
            ok = rate >= wanted or math.isclose(rate, wanted, rel_tol=1e-12)
            result.checks.append(ParityCheck(
                "agreement", PASSED if ok else FAILED, rate, wanted,
                f"same predicted class on {rate:.2%} of {len(a)} rows ({differing} differ; "
                f"needs >= {wanted:.2%})"))

    if tolerances.metric and y_true is not None:
        name, allowed = tolerances.metric, float(tolerances.max_metric_delta or 0.0)
        try:
            before = metric_value(name, y_true, original)
            after = metric_value(name, y_true, optimized)
        except (ValueError, TypeError) as exc:
            result.checks.append(ParityCheck("metric-delta", FAILED, None, allowed,
                                             f"{name} could not be computed: {exc}"))
        else:
            worse_by = (before - after) if name in HIGHER_IS_BETTER else (after - before)
            ok = not math.isnan(worse_by) and _at_most(worse_by, allowed)
            result.metric = {"name": name, "original": before, "optimized": after, "delta": after - before}
            result.checks.append(ParityCheck(
                "metric-delta", PASSED if ok else FAILED, after - before, allowed,
                f"{name}: original {before:.6g}, optimized {after:.6g} (delta {after - before:+.3g}; "
                f"may be at most {allowed:g} worse)"))
    return result
