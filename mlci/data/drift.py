"""Column-by-column drift between a reference dataset and a current one.

Numeric columns: PSI over bins cut at the reference's quantiles (nulls get a
bin of their own when either side has any), and the two-sample KS test.
Categorical columns: PSI over the reference's most frequent categories plus
`(other)` and `(unseen)` buckets, and a chi-square test on the same table.

A numeric column drifts when PSI exceeds its threshold, or when the KS
statistic exceeds its threshold *and* is significant: with a million rows a
p-value alone flags shifts too small to matter. Categorical columns are
judged by PSI, or by the chi-square p-value when asked to.

Inputs are polars DataFrames already in memory; no I/O here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

PSI_FLOOR = 1e-4  # share used for an empty bin, so ln(c/r) stays finite
OTHER = "(other)"
UNSEEN = "(unseen)"
NULL = "(null)"
NUMERIC_TYPES = (
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64", "Decimal",
)
CATEGORICAL_TYPES = ("String", "Categorical", "Enum", "Boolean")
TEMPORAL_TYPES = ("Date", "Datetime", "Duration", "Time")


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    ks_statistic: float = 0.1
    ks_pvalue: float = 0.05
    chi2_pvalue: float = 0.05
    categorical_test: str = "psi"

    def as_dict(self) -> dict[str, Any]:
        return {
            "psi": self.psi, "ks-statistic": self.ks_statistic, "ks-pvalue": self.ks_pvalue,
            "chi2-pvalue": self.chi2_pvalue, "categorical-test": self.categorical_test,
        }


@dataclass(frozen=True)
class DriftSettings:
    thresholds: Thresholds = Thresholds()
    column_thresholds: dict[str, Thresholds] = field(default_factory=dict)
    columns: tuple[str, ...] = ()  # explicit selection; empty = every shared column
    exclude: tuple[str, ...] = ()
    bins: int = 10
    max_categories: int = 50
    max_rows: int = 1_000_000
    seed: int = 0

    def thresholds_for(self, column: str) -> Thresholds:
        return self.column_thresholds.get(column, self.thresholds)


@dataclass
class Histogram:
    """Shares per bin on both sides, kept for the plots and the JSON."""

    labels: list[str]
    reference: list[float]
    current: list[float]


@dataclass
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical | schema | skipped
    status: str  # drift | ok | skipped
    reasons: list[str] = field(default_factory=list)
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    unseen_fraction: float | None = None
    unseen_examples: list[str] = field(default_factory=list)
    reference_rows: int = 0
    current_rows: int = 0
    reference_null_fraction: float | None = None
    current_null_fraction: float | None = None
    thresholds: Thresholds | None = None
    histogram: Histogram | None = None
    note: str = ""
    plot: str | None = None
    # Raw non-null values, for drawing histograms of drifting numeric columns.
    samples: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def drifted(self) -> bool:
        return self.status == "drift"


@dataclass
class DatasetDrift:
    label: str
    reference_label: str
    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    sampled: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(c.drifted for c in self.columns)


def settings_from_config(drift: dict, *, columns: list[str] | None = None,
                         exclude: list[str] | None = None) -> DriftSettings:
    """DriftSettings from the effective `data.drift` section (flags already merged by the caller)."""
    glob = drift.get("thresholds") or {}
    base = Thresholds(
        psi=glob.get("psi", 0.2), ks_statistic=glob.get("ks-statistic", 0.1), ks_pvalue=glob.get("ks-pvalue", 0.05),
        chi2_pvalue=glob.get("chi2-pvalue", 0.05), categorical_test=drift.get("categorical-test", "psi"),
    )
    per_column = {}
    for name, override in (drift.get("column-thresholds") or {}).items():
        per_column[name] = Thresholds(
            psi=override.get("psi", base.psi),
            ks_statistic=override.get("ks-statistic", base.ks_statistic),
            ks_pvalue=override.get("ks-pvalue", base.ks_pvalue),
            chi2_pvalue=override.get("chi2-pvalue", base.chi2_pvalue),
            categorical_test=override.get("categorical-test", base.categorical_test),
        )
    return DriftSettings(
        thresholds=base, column_thresholds=per_column,
        columns=tuple(columns if columns is not None else drift.get("columns") or ()),
        exclude=tuple(exclude if exclude is not None else drift.get("exclude") or ()),
        bins=drift.get("bins", 10), max_categories=drift.get("max-categories", 50),
        max_rows=drift.get("max-rows", 1_000_000),
    )


def _floor(shares: np.ndarray) -> np.ndarray:
    return np.maximum(shares, PSI_FLOOR)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    ref = _floor(reference_counts / max(reference_counts.sum(), 1))
    cur = _floor(current_counts / max(current_counts.sum(), 1))
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_2samp(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy ships with mlflow)."""
    from scipy import stats

    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    table = np.vstack([reference_counts, current_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    from scipy import stats

    statistic, pvalue, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(pvalue)


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def numeric_drift(column: str, reference: pl.Series, current: pl.Series, *, bins: int,
                  thresholds: Thresholds) -> ColumnDrift:
    ref_all = reference.cast(pl.Float64)
    cur_all = current.cast(pl.Float64)
    ref = ref_all.drop_nulls().drop_nans().to_numpy()
    cur = cur_all.drop_nulls().drop_nans().to_numpy()
    result = ColumnDrift(column=column, kind="numeric", status="ok", thresholds=thresholds,
                         reference_rows=len(reference), current_rows=len(current),
                         reference_null_fraction=_null_fraction(reference),
                         current_null_fraction=_null_fraction(current))
    if len(ref) == 0 or len(cur) == 0:
        return _empty_side(result, reference_empty=len(ref) == 0, current_empty=len(cur) == 0)

    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)
    labels = _interval_labels(edges)
    ref_nulls, cur_nulls = len(reference) - len(ref), len(current) - len(cur)
    if ref_nulls or cur_nulls:
        ref_counts = np.append(ref_counts, ref_nulls)
        cur_counts = np.append(cur_counts, cur_nulls)
        labels.append(NULL)
    result.psi = psi(ref_counts, cur_counts)
    result.ks_statistic, result.ks_pvalue = ks_2samp(ref, cur)
    result.histogram = Histogram(labels, _shares(ref_counts), _shares(cur_counts))
    result.samples = (ref, cur)

    if result.psi > thresholds.psi:
        result.reasons.append(f"PSI {_fmt(result.psi)} > {thresholds.psi:g}")
    if result.ks_statistic > thresholds.ks_statistic and result.ks_pvalue < thresholds.ks_pvalue:
        result.reasons.append(f"KS {_fmt(result.ks_statistic)} > {thresholds.ks_statistic:g} "
                              f"(p={_fmt(result.ks_pvalue)} < {thresholds.ks_pvalue:g})")
    result.status = "drift" if result.reasons else "ok"
    return result


def _empty_side(result: ColumnDrift, *, reference_empty: bool, current_empty: bool) -> ColumnDrift:
    """A side without values: nothing to compare if both are empty, else the column has changed completely."""
    if reference_empty and current_empty:
        result.status = "skipped"
        result.note = "no non-null values on either side"
    elif current_empty:
        result.status = "drift"
        result.reasons.append("no non-null values in the current data" if result.current_rows else
                              "the current data has no rows")
    else:
        result.status = "drift"
        result.reasons.append("the reference has no non-null values")
    return result


def _interval_labels(edges: np.ndarray) -> list[str]:
    if len(edges) == 0:
        return ["all"]
    points = [f"{e:.4g}" for e in edges]
    return [f"<= {points[0]}", *[f"({a}, {b}]" for a, b in itertools.pairwise(points)], f"> {points[-1]}"]


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


def _null_fraction(series: pl.Series) -> float:
    return series.null_count() / len(series) if len(series) else 0.0


def categorical_drift(column: str, reference: pl.Series, current: pl.Series, *, max_categories: int,
                      thresholds: Thresholds) -> ColumnDrift:
    result = ColumnDrift(column=column, kind="categorical", status="ok", thresholds=thresholds,
                         reference_rows=len(reference), current_rows=len(current),
                         reference_null_fraction=_null_fraction(reference),
                         current_null_fraction=_null_fraction(current))
    ref_counts = _value_counts(reference)
    cur_counts = _value_counts(current)
    if not ref_counts or not cur_counts:
        return _empty_side(result, reference_empty=not ref_counts, current_empty=not cur_counts)

    ranked = sorted(ref_counts, key=lambda k: (-ref_counts[k], k))
    kept = ranked[:max_categories]
    pooled = set(ranked[max_categories:])
    labels = list(kept)
    ref_vec = [ref_counts[k] for k in kept]
    cur_vec = [cur_counts.get(k, 0) for k in kept]
    if pooled:
        labels.append(OTHER)
        ref_vec.append(sum(ref_counts[k] for k in pooled))
        cur_vec.append(sum(v for k, v in cur_counts.items() if k in pooled))
    unseen = {k: v for k, v in cur_counts.items() if k not in ref_counts}
    examples = [k for k, _ in sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
    return judge_categories(result, labels, ref_vec, cur_vec, unseen=sum(unseen.values()), unseen_examples=examples,
                            nulls=(reference.null_count(), current.null_count()), thresholds=thresholds)


def judge_categories(result: ColumnDrift, labels: list[str], ref_vec: list[int], cur_vec: list[int], *, unseen: int,
                     unseen_examples: list[str], nulls: tuple[int, int], thresholds: Thresholds) -> ColumnDrift:
    """PSI or chi-square over the category counts of both sides (kept categories, other), with the current
    side's unseen values and both sides' nulls as categories of their own; fills in `result`'s verdict."""
    labels, ref_vec, cur_vec = [*labels, UNSEEN], [*ref_vec, 0], [*cur_vec, unseen]
    if any(nulls):
        labels.append(NULL)
        ref_vec.append(nulls[0])
        cur_vec.append(nulls[1])
    ref_arr, cur_arr = np.array(ref_vec, dtype=float), np.array(cur_vec, dtype=float)
    result.psi = psi(ref_arr, cur_arr)
    result.chi2_statistic, result.chi2_pvalue = chi_square(ref_arr, cur_arr)
    result.unseen_fraction = float(unseen / result.current_rows) if result.current_rows else 0.0
    result.unseen_examples = unseen_examples
    result.histogram = Histogram(labels, _shares(ref_arr), _shares(cur_arr))

    if thresholds.categorical_test == "chi2":
        if result.chi2_pvalue < thresholds.chi2_pvalue:
            result.reasons.append(f"chi-square p={_fmt(result.chi2_pvalue)} < {thresholds.chi2_pvalue:g}")
    elif result.psi > thresholds.psi:
        result.reasons.append(f"PSI {_fmt(result.psi)} > {thresholds.psi:g}")
    if result.reasons and unseen:
        result.reasons.append(f"{result.unseen_fraction:.1%} of current values unseen in the reference")
    result.status = "drift" if result.reasons else "ok"
    return result


def _value_counts(series: pl.Series) -> dict[str, int]:
    values = series.drop_nulls()
    if values.dtype != pl.String:
        values = values.cast(pl.String)
    counts = values.value_counts()
    return dict(zip(counts[counts.columns[0]].to_list(), counts["count"].to_list(), strict=True))


def _kind(dtype: pl.DataType) -> str:
    name = type(dtype).__name__
    if name in NUMERIC_TYPES:
        return "numeric"
    if name in CATEGORICAL_TYPES:
        return "categorical"
    if name in TEMPORAL_TYPES:
        return "temporal"
    return "other"


def compare(reference: pl.DataFrame, current: pl.DataFrame, settings: DriftSettings, *, label: str,
            reference_label: str) -> DatasetDrift:
    """Drift of every selected column of `current` against `reference`."""
    notes: list[str] = []
    sampled = False
    if reference.height > settings.max_rows:
        reference = reference.sample(n=settings.max_rows, seed=settings.seed)
        sampled = True
    if current.height > settings.max_rows:
        current = current.sample(n=settings.max_rows, seed=settings.seed + 1)
        sampled = True
    if sampled:
        notes.append(f"compared on a seeded sample of {settings.max_rows:,} rows (data.drift.max-rows)")

    explicit = list(settings.columns)
    names = explicit or [c for c in reference.columns if c not in settings.exclude]
    new_columns = [c for c in current.columns if c not in reference.columns and c not in settings.exclude]
    if new_columns and not explicit:
        notes.append("new in the current data, not compared: " + ", ".join(new_columns))
    results: list[ColumnDrift] = []
    for name in names:
        thresholds = settings.thresholds_for(name)
        if name not in reference.columns or name not in current.columns:
            side = "reference" if name not in reference.columns else "current data"
            results.append(ColumnDrift(column=name, kind="schema", status="drift", thresholds=thresholds,
                                       reasons=[f"column is missing from the {side}"],
                                       reference_rows=reference.height, current_rows=current.height))
            continue
        results.append(_column(name, reference[name], current[name], settings, thresholds,
                               explicit=name in explicit))
    return DatasetDrift(label=label, reference_label=reference_label, reference_rows=reference.height,
                        current_rows=current.height, columns=results, sampled=sampled, notes=notes)


def _column(name: str, ref: pl.Series, cur: pl.Series, settings: DriftSettings, thresholds: Thresholds, *,
            explicit: bool) -> ColumnDrift:
    ref_kind, cur_kind = _kind(ref.dtype), _kind(cur.dtype)
    if ref_kind != cur_kind:
        return ColumnDrift(column=name, kind="schema", status="drift", thresholds=thresholds,
                           reasons=[f"type changed: {ref.dtype} in the reference, {cur.dtype} now"],
                           reference_rows=len(ref), current_rows=len(cur))
    if ref_kind == "temporal":
        if not explicit:
            return ColumnDrift(column=name, kind="skipped", status="skipped", reference_rows=len(ref),
                               current_rows=len(cur),
                               note="timestamps move forward by nature; list the column in data.drift.columns "
                                    "to compare it")
        ref, cur = ref.to_physical(), cur.to_physical()
        ref_kind = "numeric"
    if ref_kind == "other":
        return ColumnDrift(column=name, kind="skipped", status="skipped", reference_rows=len(ref),
                           current_rows=len(cur), note=f"{ref.dtype} columns are not compared")
    if ref_kind == "numeric":
        return numeric_drift(name, ref, cur, bins=settings.bins, thresholds=thresholds)
    distinct = ref.n_unique()
    if not explicit and distinct > settings.max_categories and distinct > 0.5 * max(len(ref), 1):
        return ColumnDrift(column=name, kind="skipped", status="skipped", reference_rows=len(ref),
                           current_rows=len(cur),
                           note=f"{distinct:,} distinct values: looks like an identifier; list it in "
                                "data.drift.columns to compare it")
    return categorical_drift(name, ref, cur, max_categories=settings.max_categories, thresholds=thresholds)
