"""Evaluate a contract against one data file with one fused lazy polars query.

Pass 1 builds every rule as an aggregate expression and runs a single
`.select(...)` with the streaming engine: one scan of the file, whatever the
number of rules. Pass 2 runs only when a row-level rule failed: one more
bounded select that fetches up to EXAMPLES failing values (with row indices)
per failing rule. Nothing iterates over rows in Python.

Polars is imported at module level: this module is only imported by
`mlci data check` after argument parsing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from mlci.data.contract import FLOAT_NAMES, INTEGER_NAMES, Contract, Rule, dtype_accepts
from mlci.durations import format_duration
from mlci.errors import ConfigError

EXAMPLES = 5
# Files at least this big (on disk) are checked with polars' streaming engine.
STREAMING_FROM_BYTES = 64 * 1024 * 1024
# Pass 2 runs per-rule early-stopping plans while their expected scan depth, summed in
# files, stays within this; each reads only its own columns, so two partial reads of a
# few columns cost about what one full-width pass does.
EXAMPLE_DEPTH_BUDGET = 2.0
ROW_INDEX = "__mlci_row"
TEXT_FORMATS = ("csv", "ndjson")

NUMERIC = (*INTEGER_NAMES, *FLOAT_NAMES, "Decimal")
STRINGISH = ("String", "Categorical", "Enum")
TEMPORAL = ("Date", "Datetime")
NEEDS = {  # rule kind -> (accepted dtype class names, what to call them)
    "min": (NUMERIC, "a numeric"), "max": (NUMERIC, "a numeric"),
    "mean": (NUMERIC, "a numeric"), "std": (NUMERIC, "a numeric"), "quantile": (NUMERIC, "a numeric"),
    "regex": (STRINGISH, "a string"), "length": (STRINGISH, "a string"),
    "max-age": (TEMPORAL, "a date or datetime"),
}
# ISO 8601 shapes tried, in order, for text timestamps without a declared `format`.
NAIVE_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d",
)
AWARE_DATETIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")


@dataclass
class Example:
    row: int
    value: str


@dataclass
class RuleResult:
    name: str
    kind: str
    severity: str
    status: str  # passed | failed | skipped
    column: str | None = None
    failing_rows: int | None = None
    failing_fraction: float | None = None
    observed: Any = None
    message: str = ""
    examples: list[Example] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """passed | failed (error severity) | warning (warn severity) | skipped."""
        if self.status == "failed":
            return "failed" if self.severity == "error" else "warning"
        return self.status


@dataclass
class FileResult:
    path: str
    source: str
    format: str
    rows: int
    seconds: float
    rules: list[RuleResult]
    note: str = ""
    engine: str = "streaming"

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.rules)


@dataclass
class DataFile:
    path: Path
    format: str
    source: str
    contract: Contract


@dataclass
class _Pending:
    """A rule waiting for pass-1 values; `mask` marks failing rows for pass-2 examples."""

    rule: Rule
    aggs: dict[str, pl.Expr]
    finish: Callable[[dict[str, Any], int], RuleResult]
    mask: pl.Expr | None = None
    value: pl.Expr | None = None


def scan(data_file: DataFile) -> tuple[pl.LazyFrame, str, int]:
    """A lazy scan of the file (declared text columns read as raw strings), a note, and its size."""
    path, fmt = data_file.path, data_file.format
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigError("data file not found", location=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read data file: {exc.strerror or exc}", location=str(path)) from None
    if size == 0:
        return pl.LazyFrame(), "file is empty (0 bytes)", 0
    declared = {c.name: pl.String for c in data_file.contract.columns.values() if c.dtype}
    try:
        if fmt == "parquet":
            lf = pl.scan_parquet(path)
        elif fmt == "csv":
            # Declared columns come in as text and are parsed in the query, so a bad
            # value becomes a countable dtype failure with an example, not a read error.
            lf = pl.scan_csv(path, schema_overrides=declared, try_parse_dates=True, infer_schema_length=10_000)
        else:
            # NDJSON rejects overrides for absent fields, so infer once to see which exist.
            present = pl.scan_ndjson(path, infer_schema_length=10_000).collect_schema()
            declared = {name: dtype for name, dtype in declared.items() if name in present}
            lf = pl.scan_ndjson(path, schema_overrides=declared, infer_schema_length=10_000)
        lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ConfigError(f"cannot read as {fmt}: {_first_line(exc)}", location=str(path)) from None
    return lf, "", size


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _class_name(dtype: pl.DataType) -> str:
    return type(dtype).__name__ if isinstance(dtype, pl.DataType) else getattr(dtype, "__name__", str(dtype))


def _parse_text(raw: pl.Expr, declared: str, fmt: str | None) -> pl.Expr | None:
    """Expression turning a raw text column into the declared type (unparseable -> null)."""
    from mlci.data.contract import DTYPE_FAMILIES, EXACT_DTYPES

    target = EXACT_DTYPES.get(declared)
    if declared in DTYPE_FAMILIES:
        target = "Int64" if declared in ("integer", "int") else "Float64"
    text = raw.str.strip_chars()
    if target in INTEGER_NAMES or target in FLOAT_NAMES:
        return text.cast(getattr(pl, target), strict=False)
    if target == "Boolean":
        words = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
        return text.str.to_lowercase().replace_strict(words, default=None, return_dtype=pl.Boolean)
    if target == "Date":
        return text.str.to_date(fmt or "%Y-%m-%d", strict=False)
    if target == "Time":
        return text.str.to_time(fmt or "%H:%M:%S%.f", strict=False)
    if target == "Datetime":
        if fmt:
            return text.str.to_datetime(fmt, strict=False, time_unit="us")
        attempts = [text.str.to_datetime(f, strict=False, time_unit="us") for f in NAIVE_DATETIME_FORMATS]
        attempts += [
            text.str.to_datetime(f, strict=False, time_unit="us").dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            for f in AWARE_DATETIME_FORMATS
        ]
        return pl.coalesce(attempts)
    return None  # strings and categoricals are text already; durations have no text form


def _fmt_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}={_fmt_value(v)}" for k, v in value.items()) + ")"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _fraction(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


def _percent(fraction: float) -> str:
    if fraction == 0:
        return "0%"
    if fraction < 0.0001:
        return "<0.01%"
    return f"{fraction * 100:.2f}%"


class _Planner:
    def __init__(self, contract: Contract, schema: pl.Schema, fmt: str, now: datetime):
        self.contract = contract
        self.schema = schema
        self.fmt = fmt
        self.now = now
        self.parsed: dict[str, tuple[pl.Expr, str]] = {}  # column -> (parse expr, raw alias)
        self.dtypes: dict[str, str] = {name: _class_name(dt) for name, dt in schema.items()}
        self.blocked: dict[str, str] = {}  # column -> why its rules are skipped
        self.results: list[RuleResult | _Pending] = []
        # Text columns without a declared dtype whose inferred type did not fit a rule;
        # with no values at all the inference is meaningless, so these are re-judged.
        self.type_guesses: list[RuleResult] = []

    # -- helpers ---------------------------------------------------------------
    def result(self, rule: Rule, status: str, message: str = "", **kwargs) -> RuleResult:
        return RuleResult(name=rule.name, kind=rule.kind, severity=rule.severity, status=status,
                          column=rule.column, message=message, **kwargs)

    def raw(self, name: str) -> pl.Expr:
        return pl.col(self.parsed[name][1]) if name in self.parsed else pl.col(name)

    def stringy(self, name: str) -> pl.Expr:
        return pl.col(name) if self.dtypes.get(name) == "String" else pl.col(name).cast(pl.String)

    def row_rule(self, rule: Rule, index: int, mask: pl.Expr, value: pl.Expr, *, max_fraction: float | None = None,
                 count: pl.Expr | None = None) -> _Pending:
        alias = f"__r{index}"

        def finish(values: dict[str, Any], rows: int) -> RuleResult:
            failing = int(values[alias] or 0)
            fraction = _fraction(failing, rows)
            failed = fraction > max_fraction if max_fraction is not None else failing > 0
            message = f"null fraction is {_percent(fraction)}" if max_fraction is not None and failed else ""
            return self.result(rule, "failed" if failed else "passed", message,
                               failing_rows=failing, failing_fraction=fraction)

        aggs = {alias: (count if count is not None else mask.sum()).cast(pl.Int64)}
        return _Pending(rule, aggs, finish, mask=mask, value=value)

    def stat_rule(self, rule: Rule, index: int, expr: pl.Expr, low: Any, high: Any, what: str) -> _Pending:
        alias = f"__r{index}"

        def finish(values: dict[str, Any], rows: int) -> RuleResult:
            observed = values[alias]
            if observed is None:
                return self.result(rule, "failed", f"no non-null values to compute the {what}")
            observed = float(observed)
            ok = (low is None or observed >= low) and (high is None or observed <= high)
            return self.result(rule, "passed" if ok else "failed", "" if ok else f"{what} is {observed:.6g}",
                               observed=observed)

        return _Pending(rule, {alias: expr.cast(pl.Float64)}, finish)

    # -- planning --------------------------------------------------------------
    def plan(self) -> list[RuleResult | _Pending]:
        present = set(self.schema)
        for spec in self.contract.columns.values():
            if spec.name not in present:
                self.blocked[spec.name] = "column is missing" if spec.required else "optional column is absent"
            elif spec.dtype and self.fmt in TEXT_FORMATS and self.dtypes[spec.name] == "String":
                parse = _parse_text(pl.col(spec.name), spec.dtype, spec.format)
                if parse is not None:
                    self.parsed[spec.name] = (parse, f"__mlci_raw_{len(self.parsed)}")
                    self.dtypes[spec.name] = _class_name(self._parsed_dtype(spec.name))
        for index, rule in enumerate(self.contract.rules):
            self.results.append(self.plan_rule(index, rule))
        return self.results

    def _parsed_dtype(self, name: str) -> pl.DataType:
        frame = pl.LazyFrame(schema={name: pl.String}).select(self.parsed[name][0].alias(name))
        return frame.collect_schema()[name]

    def frame(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """The scan with declared text columns parsed (raw text kept alongside)."""
        if not self.parsed:
            return lf
        return lf.with_columns(
            *[expr.alias(name) for name, (expr, _) in self.parsed.items()],
            *[pl.col(name).alias(raw) for name, (_, raw) in self.parsed.items()],
        )

    def plan_rule(self, index: int, rule: Rule) -> RuleResult | _Pending:
        kind, column = rule.kind, rule.column
        if kind == "present":
            if column in self.schema:
                return self.result(rule, "passed")
            return self.result(rule, "failed", "column is missing")
        if kind == "no-extra-columns":
            extra = [c for c in self.schema if c not in self.contract.columns]
            if not extra:
                return self.result(rule, "passed")
            shown = ", ".join(extra[:8]) + (f", ... ({len(extra)} columns)" if len(extra) > 8 else "")
            return self.result(rule, "failed", f"unexpected column(s): {shown}", observed=extra)
        if kind == "rows":
            return self.plan_rows(rule)
        if kind == "sql":
            return self.plan_sql(index, rule)
        if kind == "unique" and len(rule.columns) > 1:
            return self.plan_unique_set(index, rule)

        if column in self.blocked:
            return self.result(rule, "skipped", self.blocked[column])
        if kind == "dtype":
            return self.plan_dtype(index, rule)
        actual = self.dtypes[column]
        if kind in NEEDS and actual not in NEEDS[kind][0]:
            declared = self.contract.columns.get(column)
            if declared and declared.dtype and not dtype_accepts(declared.dtype, actual):
                return self.result(rule, "skipped", f"column is {actual}; see the dtype rule")
            result = self.result(rule, "failed", f"cannot evaluate: column is {actual}, this rule needs "
                                                 f"{NEEDS[kind][1]} column")
            if self.fmt in TEXT_FORMATS:
                self.type_guesses.append(result)
            return result
        col = pl.col(column)
        p = rule.params
        if kind == "not-null":
            return self.row_rule(rule, index, self.raw(column).is_null(), self.raw(column))
        if kind == "null-fraction":
            return self.row_rule(rule, index, self.raw(column).is_null(), self.raw(column), max_fraction=p["max"])
        if kind == "unique":
            count = col.count() - col.drop_nulls().n_unique()
            return self.row_rule(rule, index, col.is_not_null() & ~col.is_first_distinct(), col, count=count)
        if kind in ("min", "max"):
            value = p["value"]
            if kind == "min":
                mask = col <= value if p["exclusive"] else col < value
            else:
                mask = col >= value if p["exclusive"] else col > value
            return self.row_rule(rule, index, mask, col)
        if kind == "allowed":
            return self.plan_allowed(index, rule, actual)
        if kind == "regex":
            text = self.stringy(column)
            return self.row_rule(rule, index, ~text.str.contains(f"^(?:{p['pattern']})$"), col)
        if kind == "length":
            lengths = self.stringy(column).str.len_chars()
            mask = pl.lit(False)
            if p["min"] is not None:
                mask = mask | (lengths < p["min"])
            if p["max"] is not None:
                mask = mask | (lengths > p["max"])
            return self.row_rule(rule, index, mask, col)
        if kind in ("mean", "std"):
            expr = col.mean() if kind == "mean" else col.std()
            return self.stat_rule(rule, index, expr, p["min"], p["max"], kind)
        if kind == "quantile":
            return self.stat_rule(rule, index, col.quantile(p["q"], "linear"), p["min"], p["max"],
                                  f"quantile {p['q']:g}")
        if kind == "max-age":
            return self.plan_freshness(index, rule, actual)
        raise AssertionError(f"unhandled rule kind {kind}")  # a contract.py/check.py mismatch, not user input

    def plan_dtype(self, index: int, rule: Rule) -> RuleResult | _Pending:
        column = rule.column
        declared = rule.params["dtype"]
        if column in self.parsed:
            raw_alias = self.parsed[column][1]
            raw = pl.col(raw_alias)
            mask = raw.is_not_null() & pl.col(column).is_null()
            pending = self.row_rule(rule, index, mask, raw)
            inner = pending.finish

            def finish(values, rows, inner=inner):
                result = inner(values, rows)
                if result.status == "failed":
                    result.message = f"values not readable as {declared}"
                return result

            pending.finish = finish
            return pending
        actual = self.dtypes[column]
        if dtype_accepts(declared, actual):
            return self.result(rule, "passed", observed=str(self.schema[column]))
        source = "Parquet schema" if self.fmt == "parquet" else f"{self.fmt.upper()} data"
        return self.result(rule, "failed", f"{source} has {self.schema[column]}, contract says {declared}",
                           observed=str(self.schema[column]))

    def plan_rows(self, rule: Rule) -> _Pending:
        low, high = rule.params["min"], rule.params["max"]

        def finish(values: dict[str, Any], rows: int) -> RuleResult:
            ok = (low is None or rows >= low) and (high is None or rows <= high)
            return self.result(rule, "passed" if ok else "failed", "" if ok else f"file has {rows} rows",
                               observed=rows)

        return _Pending(rule, {}, finish)

    def plan_sql(self, index: int, rule: Rule) -> RuleResult | _Pending:
        expr = pl.sql_expr(rule.params["sql"])
        probe = pl.LazyFrame(schema=self.schema)
        try:
            result_dtype = self.frame(probe).select(expr.alias("__x")).collect_schema()["__x"]
        except pl.exceptions.PolarsError as exc:
            return self.result(rule, "failed", f"cannot evaluate on this file: {_first_line(exc)}")
        if result_dtype != pl.Boolean:
            return self.result(rule, "failed", f"expression gives {result_dtype}, not a boolean")
        columns = [c for c in dict.fromkeys(expr.meta.root_names()) if c in self.schema]
        value = pl.struct(columns[:4]) if columns else pl.lit(None)
        return self.row_rule(rule, index, ~expr, value)

    def plan_unique_set(self, index: int, rule: Rule) -> RuleResult | _Pending:
        missing = [c for c in rule.columns if c not in self.schema]
        if missing:
            declared_required = all(
                c in self.contract.columns and self.contract.columns[c].required for c in missing
            )
            return self.result(rule, "skipped" if declared_required else "failed",
                               f"missing column(s): {', '.join(missing)}")
        valid = pl.all_horizontal([pl.col(c).is_not_null() for c in rule.columns])
        key = pl.struct(list(rule.columns))
        count = valid.sum() - key.filter(valid).n_unique()
        return self.row_rule(rule, index, valid & ~key.is_first_distinct(), key, count=count)

    def plan_allowed(self, index: int, rule: Rule, actual: str) -> RuleResult | _Pending:
        values = rule.params["values"]
        col = pl.col(rule.column)
        kinds = {type(v) for v in values}
        if actual in NUMERIC:
            if bool in kinds or str in kinds:
                return self.result(rule, "failed", f"cannot evaluate: column is {actual} but allowed values "
                                                   "are not all numbers")
            if float in kinds or actual in FLOAT_NAMES:
                mask = ~col.cast(pl.Float64).is_in(pl.Series(values, dtype=pl.Float64).implode())
            else:
                mask = ~col.is_in(pl.Series(values, dtype=pl.Int64).implode())
        elif actual in STRINGISH:
            if kinds != {str}:
                return self.result(rule, "failed", f"cannot evaluate: column is {actual} but allowed values "
                                                   "are not all strings")
            mask = ~self.stringy(rule.column).is_in(pl.Series(values, dtype=pl.String).implode())
        elif actual == "Boolean":
            if kinds != {bool}:
                return self.result(rule, "failed", "cannot evaluate: column is Boolean but allowed values "
                                                   "are not all true/false")
            mask = ~col.is_in(pl.Series(values, dtype=pl.Boolean).implode())
        else:
            return self.result(rule, "failed", f"cannot evaluate: allowed values on a {actual} column")
        return self.row_rule(rule, index, mask, col)

    def plan_freshness(self, index: int, rule: Rule, actual: str) -> _Pending:
        alias = f"__r{index}"
        col = pl.col(rule.column)
        limit = rule.params["seconds"]

        def finish(values: dict[str, Any], rows: int) -> RuleResult:
            newest = values[alias]
            if newest is None:
                return self.result(rule, "failed", "no non-null timestamps")
            if isinstance(newest, datetime):
                stamp = newest if newest.tzinfo else newest.replace(tzinfo=timezone.utc)
            else:  # a date counts from its midnight, UTC
                stamp = datetime(newest.year, newest.month, newest.day, tzinfo=timezone.utc)
            age = (self.now - stamp).total_seconds()
            ok = age <= limit
            message = "" if ok else (
                f"newest value {stamp.isoformat()} is {format_duration(age)} old (limit {rule.params['text']})"
            )
            return self.result(rule, "passed" if ok else "failed", message, observed=stamp.isoformat())

        return _Pending(rule, {alias: col.max()}, finish)


def engine_for(size_bytes: int) -> str:
    """Polars' in-memory engine has less per-query overhead; streaming bounds memory on big files."""
    return "streaming" if size_bytes >= STREAMING_FROM_BYTES else "in-memory"


def evaluate(lf: pl.LazyFrame, contract: Contract, *, fmt: str, now: datetime | None = None,
             engine: str = "streaming") -> tuple[int, list]:
    """Run both passes over a scan; returns (row count, rule results in contract order)."""
    now = now or datetime.now(timezone.utc)
    schema = lf.collect_schema()
    planner = _Planner(contract, schema, fmt, now)
    planned = planner.plan()
    frame = planner.frame(lf)

    aggs: dict[str, pl.Expr] = {"__rows": pl.len().cast(pl.Int64)}
    for item in planned:
        if isinstance(item, _Pending):
            aggs.update(item.aggs)
    for n, guess in enumerate(planner.type_guesses):
        aggs[f"__nn{n}"] = pl.col(guess.column).count().cast(pl.Int64)
    values = frame.select(**aggs).collect(engine=engine).row(0, named=True)
    rows = int(values["__rows"])

    results: list[RuleResult] = []
    needs_examples: list[tuple[_Pending, RuleResult]] = []
    for item in planned:
        if isinstance(item, RuleResult):
            results.append(item)
            continue
        result = item.finish(values, rows)
        results.append(result)
        if result.status == "failed" and item.mask is not None and result.failing_rows:
            needs_examples.append((item, result))

    if needs_examples:
        found = _fetch_examples(planner.frame(lf.with_row_index(ROW_INDEX)), needs_examples, engine)
        for (_, result), (rows_found, values_found) in zip(needs_examples, found, strict=True):
            result.examples = [
                Example(row=int(r), value=_fmt_value(v)) for r, v in zip(rows_found, values_found, strict=False)
            ]

    for n, guess in enumerate(planner.type_guesses):
        if values[f"__nn{n}"] == 0:
            # A header-only CSV, or a column with no values: text carries no type to judge.
            guess.status = "skipped"
            guess.message = "no values, so the type of this text column is unknown (declare a dtype)"
    return rows, results


def _fetch_examples(indexed: pl.LazyFrame, failing: list[tuple[_Pending, RuleResult]],
                    engine: str) -> list[tuple[list, list]]:
    """Pass 2: up to EXAMPLES (row index, value) pairs per failing rule, in row order.

    Pass 1's counts tell how deep into the file each rule's first examples lie (on
    average). While that is cheap, each rule gets its own filter-then-head plan and
    the plans are collected together: the streaming engine stops each one as soon as
    it has its examples. Otherwise one full pass picks all examples at once.
    """
    expected_depth = sum(min(1.0, EXAMPLES / result.failing_rows) for _, result in failing)
    if expected_depth <= EXAMPLE_DEPTH_BUDGET:
        plans = [
            indexed.filter(item.mask.fill_null(False))
            .select(pl.col(ROW_INDEX), item.value.alias("__value"))
            .head(EXAMPLES)
            for item, _ in failing
        ]
        frames = pl.collect_all(plans, engine="streaming")  # streaming, so each plan stops at its head
        return [(frame[ROW_INDEX].to_list(), frame["__value"].to_list()) for frame in frames]
    picks: dict[str, pl.Expr] = {}
    for n, (item, _) in enumerate(failing):
        mask = item.mask.fill_null(False)
        picks[f"__e{n}_row"] = pl.col(ROW_INDEX).filter(mask).head(EXAMPLES).implode()
        picks[f"__e{n}_val"] = item.value.filter(mask).head(EXAMPLES).implode()
    row = indexed.select(**picks).collect(engine=engine).row(0, named=True)
    return [(row[f"__e{n}_row"], row[f"__e{n}_val"]) for n in range(len(failing))]


def check_file(data_file: DataFile, *, now: datetime | None = None) -> FileResult:
    started = time.perf_counter()
    lf, note, size = scan(data_file)
    engine = engine_for(size)
    try:
        rows, results = evaluate(lf, data_file.contract, fmt=data_file.format, now=now, engine=engine)
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(f"cannot read as {data_file.format}: {_first_line(exc)}",
                          location=str(data_file.path)) from None
    return FileResult(
        path=str(data_file.path), source=data_file.source, format=data_file.format, rows=rows,
        seconds=round(time.perf_counter() - started, 3), rules=results, note=note, engine=engine,
    )
