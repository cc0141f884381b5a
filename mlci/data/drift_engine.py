"""Drift statistics as aggregate queries, for DuckDB, Spark SQL and SQL warehouses.

Nothing but aggregates leaves the engine:
- numeric columns: row/null counts and a grid of quantiles per side (one query
  each), then the counts per reference-decile bin on both sides. PSI uses the
  same bins as the polars engine (the reference's linear quantiles), so it is
  the same number; KS is read off the two quantile grids (the largest gap
  between the two empirical CDFs at every grid point, within 1/GRID of the
  exact statistic) with the asymptotic two-sample p-value;
- categorical columns: the reference's most frequent values, the current
  counts of those, and the count of current values the reference never had
  (an anti-join), so (other)/(unseen) buckets match the polars engine.
The verdicts then go through the same psi/chi-square/threshold code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlglot import exp

from mlci.data.drift import (
    NULL,
    OTHER,
    ColumnDrift,
    DatasetDrift,
    DriftSettings,
    Histogram,
    Thresholds,
    _empty_side,
    _fmt,
    _interval_labels,
    _shares,
    judge_categories,
    psi,
)
from mlci.data.sql_contract import col, count_where, lit

GRID = 100  # quantiles per side for the KS statistic (error <= 1/GRID)
NUMERIC = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64", "Decimal")
CATEGORICAL = ("String", "Categorical", "Enum", "Boolean")
TEMPORAL = ("Date", "Datetime", "Duration", "Time")

Execute = Callable[[str], list[tuple]]


@dataclass
class Side:
    relation: exp.Table
    columns: dict[str, str]  # name -> polars class name
    label: str


def _kind(type_name: str) -> str:
    if type_name in NUMERIC:
        return "numeric"
    if type_name in CATEGORICAL:
        return "categorical"
    if type_name in TEMPORAL:
        return "temporal"
    return "other"


def _sql(expression: exp.Expression, dialect: str) -> str:
    return expression.sql(dialect=dialect, identify=True)


def _as_double(column: exp.Expression) -> exp.Expression:
    return exp.cast(column, exp.DataType.build("DOUBLE"))


def is_number(value: exp.Expression, dialect: str) -> exp.Expression:
    """Not NaN (NULL stays NULL). Engines disagree on NaN = NaN, so each gets its own test."""
    if dialect in ("duckdb", "spark", "databricks"):
        return exp.Not(this=exp.IsNan(this=value))
    if dialect == "postgres":
        return exp.NEQ(this=value, expression=exp.cast(lit("NaN"), exp.DataType.build("DOUBLE")))
    return exp.EQ(this=value, expression=value.copy())


def _finite(column: exp.Expression, dialect: str) -> exp.Expression:
    """The column as a double, with NaN as NULL, so aggregates skip it like polars' drop_nans."""
    value = _as_double(column)
    return exp.Case(ifs=[exp.If(this=is_number(value, dialect), true=value.copy())])


def quantile_list(column: exp.Expression, qs: list[float], dialect: str) -> list[exp.Expression]:
    """Linear quantiles of a column at `qs`, as one list-valued aggregate where the dialect has one."""
    values = _finite(column, dialect)
    array = exp.Array(expressions=[lit(float(q)) for q in qs])
    if dialect == "duckdb":
        return [exp.Anonymous(this="QUANTILE_CONT", expressions=[values, array])]
    if dialect in ("spark", "databricks"):
        return [exp.Anonymous(this="PERCENTILE", expressions=[values, array])]
    if dialect == "postgres":
        return [exp.WithinGroup(this=exp.PercentileCont(this=array),
                                expression=exp.Order(expressions=[exp.Ordered(this=values)]))]
    return [exp.WithinGroup(this=exp.PercentileCont(this=lit(float(q))),
                            expression=exp.Order(expressions=[exp.Ordered(this=values.copy())])) for q in qs]


def _select(selects: list[exp.Expression], relation: exp.Table) -> exp.Select:
    return exp.select(*[exp.alias_(e, f"c{n}", quoted=True) for n, e in enumerate(selects)]).from_(relation.copy())


def _profile(side: Side, numeric: list[str], categorical: list[str], qs: list[float], dialect: str,
             execute: Execute) -> tuple[int, dict[str, dict]]:
    """Row count, then per column: non-null count, (numeric) non-NaN count and quantiles, (categorical) distinct."""
    selects: list[exp.Expression] = [exp.Count(this=exp.Star())]
    layout: list[tuple[str, str, int]] = []
    for name in numeric:
        c = col(name)
        selects.append(exp.Count(this=c.copy()))
        selects.append(exp.Count(this=_finite(c.copy(), dialect)))
        parts = quantile_list(c.copy(), qs, dialect)
        layout.append((name, "numeric", len(parts)))
        selects.extend(parts)
    for name in categorical:
        c = col(name)
        selects.append(exp.Count(this=c))
        selects.append(exp.Count(this=exp.Distinct(expressions=[c.copy()])))
        layout.append((name, "categorical", 0))
    row = execute(_sql(_select(selects, side.relation), dialect))[0]
    rows = int(row[0] or 0)
    out: dict[str, dict] = {}
    position = 1
    for name, kind, parts in layout:
        if kind == "numeric":
            non_null, finite = int(row[position] or 0), int(row[position + 1] or 0)
            raw = row[position + 2: position + 2 + parts]
            grid = list(raw[0]) if parts == 1 and isinstance(raw[0], (list, tuple)) else list(raw)
            if parts == 1 and isinstance(raw[0], str):  # a driver that returns arrays as text
                grid = [float(v) for v in raw[0].strip("{}[]").split(",") if v.strip()]
            out[name] = {"non_null": non_null, "finite": finite,
                         "grid": [float(v) for v in grid if v is not None] if finite else []}
            position += 2 + parts
        else:
            out[name] = {"non_null": int(row[position] or 0), "distinct": int(row[position + 1] or 0)}
            position += 2
    return rows, out


def _bin_counts(side: Side, edges: dict[str, np.ndarray], dialect: str,
                execute: Execute) -> dict[str, np.ndarray]:
    """Per numeric column: non-NaN values in each bin (v <= e0, e0 < v <= e1, ..., > e_last)."""
    selects: list[exp.Expression] = []
    layout: list[tuple[str, int]] = []
    for name, cuts in edges.items():
        c = _as_double(col(name))
        valid = is_number(c.copy(), dialect)
        for edge in cuts:
            selects.append(count_where(exp.and_(valid.copy(), exp.LTE(this=c.copy(), expression=lit(float(edge))))))
        selects.append(count_where(valid.copy()))
        layout.append((name, len(cuts)))
    if not selects:
        return {}
    row = execute(_sql(_select(selects, side.relation), dialect))[0]
    out: dict[str, np.ndarray] = {}
    position = 0
    for name, n in layout:
        cumulative = np.array([int(v or 0) for v in row[position: position + n + 1]], dtype=float)
        out[name] = np.diff(np.concatenate([[0.0], cumulative]))
        position += n + 1
    return out


def _ks_from_grids(ref_grid: list[float], cur_grid: list[float], qs: np.ndarray, n_ref: int,
                   n_cur: int) -> tuple[float, float]:
    """Largest CDF gap between two samples known by their quantile grids, and its asymptotic p-value."""
    from scipy import stats

    ref, cur = np.asarray(ref_grid), np.asarray(cur_grid)
    points = np.union1d(ref, cur)

    def cdf(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
        # right-continuous empirical CDF read off the quantile function; flat runs take their top share
        upper = np.searchsorted(grid, x, side="right")
        below = np.interp(x, grid, qs)
        return np.where(upper >= len(grid), 1.0, np.where(upper == 0, 0.0, np.maximum(below, qs[upper - 1])))

    statistic = float(np.max(np.abs(cdf(ref, points) - cdf(cur, points)))) if len(points) else 0.0
    effective = n_ref * n_cur / (n_ref + n_cur)
    pvalue = float(stats.kstwo.sf(statistic, max(1, round(effective))))
    return statistic, pvalue


def _categories(name: str, reference: Side, current: Side, keep: int, dialect: str,
                execute: Execute) -> tuple[dict[str, int], dict[str, int], int, list[str]]:
    """Reference top values (+1 to know whether any were pooled), current counts of those, the
    current count unseen in the reference, and the most frequent unseen values."""
    text = exp.DataType.build("TEXT")
    ref_col, cur_col = col(name), col(name)
    count = exp.Count(this=exp.Star())
    top = (exp.select(exp.cast(ref_col, text), count).from_(reference.relation.copy())
           .where(exp.Not(this=exp.Is(this=ref_col.copy(), expression=exp.Null())))
           .group_by(ref_col.copy()).order_by(exp.Ordered(this=count.copy(), desc=True),
                                              exp.Ordered(this=exp.cast(ref_col.copy(), text)))
           .limit(keep))
    ref_counts = {str(value): int(n) for value, n in execute(_sql(top, dialect))}
    cur_counts: dict[str, int] = {}
    if ref_counts:
        kept = (exp.select(exp.cast(cur_col, text), count.copy()).from_(current.relation.copy())
                .where(exp.In(this=exp.cast(cur_col.copy(), text), expressions=[lit(k) for k in ref_counts]))
                .group_by(cur_col.copy()))
        cur_counts = {str(value): int(n) for value, n in execute(_sql(kept, dialect))}
    ref_alias, cur_alias = exp.to_identifier("r", quoted=True), exp.to_identifier("c", quoted=True)
    outer = exp.column(name, table=cur_alias, quoted=True)
    inner = exp.column(name, table=ref_alias, quoted=True)
    seen = (exp.select(lit(1)).from_(exp.alias_(reference.relation.copy(), ref_alias))
            .where(exp.EQ(this=inner, expression=outer.copy())))
    unseen_rows = (exp.select(exp.cast(outer.copy(), text), count.copy())
                   .from_(exp.alias_(current.relation.copy(), cur_alias))
                   .where(exp.and_(exp.Not(this=exp.Is(this=outer.copy(), expression=exp.Null())),
                                   exp.Not(this=exp.Exists(this=seen))))
                   .group_by(outer.copy()))
    listed = execute(_sql(unseen_rows, dialect))
    unseen_total = sum(int(n) for _, n in listed)
    examples = [str(v) for v, _ in sorted(listed, key=lambda kv: (-int(kv[1]), str(kv[0])))[:5]]
    return ref_counts, cur_counts, unseen_total, examples


def compare_in_engine(reference: Side, current: Side, settings: DriftSettings, dialect: str, execute: Execute, *,
                      label: str, reference_label: str, engine_name: str) -> DatasetDrift:
    notes = [f"statistics computed as aggregates over all rows on {engine_name}"]
    explicit = list(settings.columns)
    names = explicit or [c for c in reference.columns if c not in settings.exclude]
    new_columns = [c for c in current.columns if c not in reference.columns and c not in settings.exclude]
    if new_columns and not explicit:
        notes.append("new in the current data, not compared: " + ", ".join(new_columns))

    results: dict[str, ColumnDrift] = {}
    numeric: list[str] = []
    categorical: list[str] = []
    for name in names:
        thresholds = settings.thresholds_for(name)
        if name not in reference.columns or name not in current.columns:
            side = "reference" if name not in reference.columns else "current data"
            results[name] = ColumnDrift(column=name, kind="schema", status="drift", thresholds=thresholds,
                                        reasons=[f"column is missing from the {side}"])
            continue
        ref_kind, cur_kind = _kind(reference.columns[name]), _kind(current.columns[name])
        if ref_kind != cur_kind:
            results[name] = ColumnDrift(column=name, kind="schema", status="drift", thresholds=thresholds,
                                        reasons=[f"type changed: {reference.columns[name]} in the reference, "
                                                 f"{current.columns[name]} now"])
        elif ref_kind == "temporal":
            note = ("timestamps move forward by nature; list the column in data.drift.columns to compare it"
                    if name not in explicit else "timestamp columns are compared by the polars engine only")
            results[name] = ColumnDrift(column=name, kind="skipped", status="skipped", note=note)
        elif ref_kind == "other":
            results[name] = ColumnDrift(column=name, kind="skipped", status="skipped",
                                        note=f"{reference.columns[name]} columns are not compared")
        elif ref_kind == "numeric":
            numeric.append(name)
        else:
            categorical.append(name)

    qs = np.linspace(0.0, 1.0, GRID + 1)
    ref_rows, ref_profile = _profile(reference, numeric, categorical, list(qs), dialect, execute)
    cur_rows, cur_profile = _profile(current, numeric, categorical, list(qs), dialect, execute)
    edges: dict[str, np.ndarray] = {}
    for name in numeric:
        grid = ref_profile[name]["grid"]
        if grid:
            # The reference deciles (bins=10) sit on the grid: the same edges np.quantile gives.
            inner = np.interp(np.linspace(0, 1, settings.bins + 1)[1:-1], qs, grid)
            edges[name] = np.unique(inner)
    cur_bins = _bin_counts(current, {n: e for n, e in edges.items() if cur_profile[n]["finite"]}, dialect, execute)
    ref_bins = _bin_counts(reference, edges, dialect, execute)

    for name in numeric:
        thresholds = settings.thresholds_for(name)
        ref_p, cur_p = ref_profile[name], cur_profile[name]
        result = ColumnDrift(column=name, kind="numeric", status="ok", thresholds=thresholds,
                             reference_rows=ref_rows, current_rows=cur_rows,
                             reference_null_fraction=(ref_rows - ref_p["non_null"]) / ref_rows if ref_rows else 0.0,
                             current_null_fraction=(cur_rows - cur_p["non_null"]) / cur_rows if cur_rows else 0.0)
        if not ref_p["finite"] or not cur_p["finite"]:
            results[name] = _empty_side(result, reference_empty=not ref_p["finite"],
                                        current_empty=not cur_p["finite"])
            continue
        ref_counts, cur_counts = ref_bins[name], cur_bins[name]
        labels = _interval_labels(edges[name])
        ref_missing, cur_missing = ref_rows - ref_p["finite"], cur_rows - cur_p["finite"]
        if ref_missing or cur_missing:
            ref_counts, cur_counts = np.append(ref_counts, ref_missing), np.append(cur_counts, cur_missing)
            labels.append(NULL)
        result.psi = psi(ref_counts, cur_counts)
        result.ks_statistic, result.ks_pvalue = _ks_from_grids(ref_p["grid"], cur_p["grid"], qs, ref_p["finite"],
                                                               cur_p["finite"])
        result.histogram = Histogram(labels, _shares(ref_counts), _shares(cur_counts))
        if result.psi > thresholds.psi:
            result.reasons.append(f"PSI {_fmt(result.psi)} > {thresholds.psi:g}")
        if result.ks_statistic > thresholds.ks_statistic and result.ks_pvalue < thresholds.ks_pvalue:
            result.reasons.append(f"KS {_fmt(result.ks_statistic)} > {thresholds.ks_statistic:g} "
                                  f"(p={_fmt(result.ks_pvalue)} < {thresholds.ks_pvalue:g})")
        result.status = "drift" if result.reasons else "ok"
        results[name] = result

    for name in categorical:
        results[name] = _categorical(name, reference, current, ref_profile[name], cur_profile[name], ref_rows,
                                     cur_rows, settings, dialect, execute, explicit=name in explicit)
    return DatasetDrift(label=label, reference_label=reference_label, reference_rows=ref_rows, current_rows=cur_rows,
                        columns=[results[n] for n in names], notes=notes)


def _categorical(name: str, reference: Side, current: Side, ref_p: dict, cur_p: dict, ref_rows: int, cur_rows: int,
                 settings: DriftSettings, dialect: str, execute: Execute, *, explicit: bool) -> ColumnDrift:
    thresholds: Thresholds = settings.thresholds_for(name)
    distinct = ref_p["distinct"]
    if not explicit and distinct > settings.max_categories and distinct > 0.5 * max(ref_rows, 1):
        return ColumnDrift(column=name, kind="skipped", status="skipped", reference_rows=ref_rows,
                           current_rows=cur_rows,
                           note=f"{distinct:,} distinct values: looks like an identifier; list it in "
                                "data.drift.columns to compare it")
    result = ColumnDrift(column=name, kind="categorical", status="ok", thresholds=thresholds,
                         reference_rows=ref_rows, current_rows=cur_rows,
                         reference_null_fraction=(ref_rows - ref_p["non_null"]) / ref_rows if ref_rows else 0.0,
                         current_null_fraction=(cur_rows - cur_p["non_null"]) / cur_rows if cur_rows else 0.0)
    if not ref_p["non_null"] or not cur_p["non_null"]:
        return _empty_side(result, reference_empty=not ref_p["non_null"], current_empty=not cur_p["non_null"])
    ref_top, cur_top, unseen, examples = _categories(name, reference, current, settings.max_categories, dialect,
                                                     execute)
    kept = sorted(ref_top, key=lambda k: (-ref_top[k], k))
    labels = list(kept)
    ref_vec = [ref_top[k] for k in kept]
    cur_vec = [cur_top.get(k, 0) for k in kept]
    pooled_ref = ref_p["non_null"] - sum(ref_vec)
    pooled_cur = cur_p["non_null"] - sum(cur_vec) - unseen
    if pooled_ref > 0:
        labels.append(OTHER)
        ref_vec.append(pooled_ref)
        cur_vec.append(pooled_cur)
    return judge_categories(result, labels, ref_vec, cur_vec, unseen=unseen, unseen_examples=examples,
                            nulls=(ref_rows - ref_p["non_null"], cur_rows - cur_p["non_null"]), thresholds=thresholds)
