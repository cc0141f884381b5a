"""Evaluate a contract against one data file with one fused lazy polars query.

Every rule becomes an aggregate expression in a single `.select(...)`: one scan
of the file, whatever the number of rules. Files read in memory get their
example rows from the same query (each row rule's mask is computed once, then
summed and searched). Streamed files stay in flat memory: a second, bounded
pass fetches up to EXAMPLES failing values (with row indices) per failing rule,
only when one failed. Nothing iterates over rows in Python.

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
from mlci.data.location import Location, safe_url
from mlci.durations import format_duration
from mlci.errors import ConfigError, ExternalServiceError

EXAMPLES = 5
# Files at least this big (on disk) are checked with polars' streaming engine.
STREAMING_FROM_BYTES = 64 * 1024 * 1024
# Pass 2 runs per-rule early-stopping plans while their expected scan depth, summed in
# files, stays within this; each reads only its own columns, so two partial reads of a
# few columns cost about what one full-width pass does.
EXAMPLE_DEPTH_BUDGET = 2.0
# Otherwise one pass keeps every failing row, while pass 1 counted at most this many.
ONE_PASS_EXAMPLE_ROWS = 100_000
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
    row: int | None  # 0-based row in file order; None where the engine has no row order (SQL tables)
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
    version: int | None = None  # Delta version / Iceberg snapshot id that was read

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.rules)


@dataclass
class DataFile:
    """One dataset to check: a file, a folder, a table version, or a table in an engine's catalog."""

    path: Path | str
    format: str
    source: str
    contract: Contract
    size: int | None = None  # bytes, when a listing already told (object stores)
    folder: bool = False  # a folder read as one dataset (hive partitions become columns)
    location: Location | None = None  # Delta/Iceberg tables
    engine: str = "polars"
    connection: str | None = None  # name of the variable holding the engine's connection string
    table: str | None = None  # a table the engine reads by name
    where: str | None = None  # mlci.yml location of its source


@dataclass
class _Pending:
    """A rule waiting for pass-1 values; `mask` marks failing rows for pass-2 examples."""

    rule: Rule
    aggs: dict[str, pl.Expr]
    finish: Callable[[dict[str, Any], int], RuleResult]
    mask: pl.Expr | None = None
    value: pl.Expr | None = None
    key: pl.Expr | None = None  # uniqueness rules: the key, and which rows have a full (non-null) key
    key_valid: pl.Expr | None = None
    key_columns: tuple[str, ...] = ()
    quantile: tuple[pl.Expr, float] | None = None  # (column, q) of a quantile rule


@dataclass
class Scanned:
    frame: pl.LazyFrame
    note: str
    size: int
    label: str  # what the report calls it: the path, URL or pinned table
    version: int | None = None


def _read_failure(data_file: DataFile, exc: BaseException) -> Exception:
    """A polars read error as ConfigError (bad data, exit 2) or, for an unreachable store, exit 3."""
    from mlci.adapters.object_store import credential_hint, looks_unreachable, scrub
    from mlci.data.location import url_scheme

    text = scrub(_first_line(exc))
    label = safe_url(str(data_file.path))
    scheme = url_scheme(str(data_file.path))
    if scheme is not None and looks_unreachable(text):
        return ExternalServiceError("object storage", label, text, hint=credential_hint(scheme))
    return ConfigError(f"cannot read as {data_file.format}: {text}", location=label)


def scan(data_file: DataFile) -> Scanned:
    """A lazy scan (declared text columns read as raw strings), a note, its size and its report label."""
    from mlci.data.readers import open_table, scan_path

    if data_file.location is not None and data_file.location.is_table:
        opened = open_table(data_file.location, where=data_file.where)
        return Scanned(opened.frame, "", opened.size_bytes or 0, opened.label, opened.version)
    path, fmt = data_file.path, data_file.format
    label = safe_url(str(path))
    remote = isinstance(path, str) and "://" in path
    if remote or data_file.folder:
        size = data_file.size or 0
    else:
        try:
            size = Path(path).stat().st_size
        except FileNotFoundError:
            raise ConfigError("data file not found", location=str(path)) from None
        except OSError as exc:
            raise ConfigError(f"cannot read data file: {exc.strerror or exc}", location=str(path)) from None
        if size == 0:
            return Scanned(pl.LazyFrame(), "file is empty (0 bytes)", 0, label)
    # Declared columns come in as text and are parsed in the query, so a bad value
    # becomes a countable dtype failure with an example, not a read error.
    text_columns = tuple(c.name for c in data_file.contract.columns.values() if c.dtype) if fmt in TEXT_FORMATS \
        else ()
    try:
        lf = scan_path(path, fmt, folder=data_file.folder, text_columns=text_columns)
        lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _read_failure(data_file, exc) from None
    return Scanned(lf, "", size, label)


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


# -- verdicts from aggregate values (shared by the polars planner and the SQL engines) -----------
def make_result(rule: Rule, status: str, message: str = "", **kwargs) -> RuleResult:
    return RuleResult(name=rule.name, kind=rule.kind, severity=rule.severity, status=status,
                      column=rule.column, message=message, **kwargs)


def judge_rows_failing(rule: Rule, failing: Any, rows: int, max_fraction: float | None = None) -> RuleResult:
    """A row-level rule: failed when any row fails (or, for null-fraction, too large a share)."""
    failing = int(failing or 0)
    fraction = _fraction(failing, rows)
    failed = fraction > max_fraction if max_fraction is not None else failing > 0
    message = f"null fraction is {_percent(fraction)}" if max_fraction is not None and failed else ""
    return make_result(rule, "failed" if failed else "passed", message, failing_rows=failing,
                       failing_fraction=fraction)


def judge_statistic(rule: Rule, observed: Any, low: Any, high: Any, what: str) -> RuleResult:
    if observed is None:
        return make_result(rule, "failed", f"no non-null values to compute the {what}")
    observed = float(observed)
    ok = (low is None or observed >= low) and (high is None or observed <= high)
    return make_result(rule, "passed" if ok else "failed", "" if ok else f"{what} is {observed:.6g}",
                       observed=observed)


def judge_row_count(rule: Rule, rows: int) -> RuleResult:
    low, high = rule.params["min"], rule.params["max"]
    ok = (low is None or rows >= low) and (high is None or rows <= high)
    return make_result(rule, "passed" if ok else "failed", "" if ok else f"file has {rows} rows", observed=rows)


def judge_freshness(rule: Rule, newest: Any, now: datetime) -> RuleResult:
    limit = rule.params["seconds"]
    if newest is None:
        return make_result(rule, "failed", "no non-null timestamps")
    if isinstance(newest, datetime):
        stamp = newest if newest.tzinfo else newest.replace(tzinfo=timezone.utc)
    else:  # a date counts from its midnight, UTC
        stamp = datetime(newest.year, newest.month, newest.day, tzinfo=timezone.utc)
    age = (now - stamp).total_seconds()
    ok = age <= limit
    message = "" if ok else (
        f"newest value {stamp.isoformat()} is {format_duration(age)} old (limit {rule.params['text']})"
    )
    return make_result(rule, "passed" if ok else "failed", message, observed=stamp.isoformat())


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
        return make_result(rule, status, message, **kwargs)

    def raw(self, name: str) -> pl.Expr:
        return pl.col(self.parsed[name][1]) if name in self.parsed else pl.col(name)

    def stringy(self, name: str) -> pl.Expr:
        return pl.col(name) if self.dtypes.get(name) == "String" else pl.col(name).cast(pl.String)

    def row_rule(self, rule: Rule, index: int, mask: pl.Expr, value: pl.Expr, *, max_fraction: float | None = None,
                 count: pl.Expr | None = None) -> _Pending:
        alias = f"__r{index}"

        def finish(values: dict[str, Any], rows: int) -> RuleResult:
            return judge_rows_failing(rule, values[alias], rows, max_fraction)

        aggs = {alias: (count if count is not None else mask.sum()).cast(pl.Int64)}
        return _Pending(rule, aggs, finish, mask=mask, value=value)

    def stat_rule(self, rule: Rule, index: int, expr: pl.Expr, low: Any, high: Any, what: str) -> _Pending:
        alias = f"__r{index}"

        def finish(values: dict[str, Any], rows: int) -> RuleResult:
            return judge_statistic(rule, values[alias], low, high, what)

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
            pending = self.row_rule(rule, index, col.is_not_null() & ~col.is_first_distinct(), col, count=count)
            pending.key, pending.key_valid, pending.key_columns = col, col.is_not_null(), (column,)
            return pending
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
            pending = self.stat_rule(rule, index, col.quantile(p["q"], "linear"), p["min"], p["max"],
                                     f"quantile {p['q']:g}")
            pending.quantile = (col, p["q"])
            return pending
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
        source = {"parquet": "Parquet schema", "csv": "CSV data", "ndjson": "NDJSON data"}.get(self.fmt, "table schema")
        return self.result(rule, "failed", f"{source} has {self.schema[column]}, contract says {declared}",
                           observed=str(self.schema[column]))

    def plan_rows(self, rule: Rule) -> _Pending:
        return _Pending(rule, {}, lambda values, rows: judge_row_count(rule, rows))

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
        pending = self.row_rule(rule, index, valid & ~key.is_first_distinct(), key, count=count)
        pending.key, pending.key_valid, pending.key_columns = key, valid, tuple(rule.columns)
        return pending

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
        return _Pending(rule, {alias: pl.col(rule.column).max()},
                        lambda values, rows: judge_freshness(rule, values[alias], self.now))


def engine_for(size_bytes: int) -> str:
    """Polars' in-memory engine has less per-query overhead; streaming bounds memory on big files."""
    return "streaming" if size_bytes >= STREAMING_FROM_BYTES else "in-memory"


def evaluate(lf: pl.LazyFrame, contract: Contract, *, fmt: str, now: datetime | None = None,
             engine: str = "streaming") -> tuple[int, list]:
    """Evaluate every rule over a scan; returns (row count, rule results in contract order).

    In memory, each row rule's mask is computed once as a column: its sum is the failing
    count and its first true positions are the examples, all in the one query. Streaming
    keeps memory flat instead: counts first, examples from a second, early-stopping pass
    only when something failed.
    """
    now = now or datetime.now(timezone.utc)
    schema = lf.collect_schema()
    planner = _Planner(contract, schema, fmt, now)
    planned = planner.plan()
    frame = planner.frame(lf)
    one_pass = engine == "in-memory"

    aggs: dict[str, pl.Expr] = {"__rows": pl.len().cast(pl.Int64)}
    masks: dict[str, pl.Expr] = {}
    for n, item in enumerate(planned):
        if not isinstance(item, _Pending):
            continue
        if one_pass and item.mask is not None and item.rule.kind != "unique":
            # The mask's sum is the rule's count. Uniqueness keeps its cheaper n_unique count (a
            # first-occurrence mask costs a hash pass even on valid data); its examples, when it
            # fails, come from the early-stopping follow-up below.
            name = f"__m{n}"
            masks[name] = item.mask.fill_null(False)
            (alias,) = item.aggs
            aggs[alias] = pl.col(name).sum().cast(pl.Int64)
            first = pl.col(name).arg_true().head(EXAMPLES)
            aggs[f"__e{n}_row"] = first.implode()
            aggs[f"__e{n}_val"] = item.value.gather(first).implode()
        else:
            aggs.update(item.aggs)
    for n, guess in enumerate(planner.type_guesses):
        aggs[f"__nn{n}"] = pl.col(guess.column).count().cast(pl.Int64)
    uniques = [item for item in planned if isinstance(item, _Pending) and item.key is not None]
    quantiles = [item for item in planned if isinstance(item, _Pending) and item.quantile is not None]
    total = _row_count(lf) if engine == "streaming" and (uniques or quantiles) else 0
    parts = max(1, -(-total // UNIQUE_PARTITION_ROWS)) if uniques else 1
    if parts > 1:
        # Exact distinct counts of a huge key would hold every key at once; hash-partitioned
        # passes over the key columns alone hold a 1/parts share each (equal keys share a part).
        for item in uniques:
            for alias in item.aggs:
                aggs.pop(alias, None)
    exact_quantiles = total > QUANTILE_IN_MEMORY_ROWS
    if exact_quantiles:
        # An exact quantile holds the whole column; two narrow passes (a histogram, then the one
        # bucket holding the rank) find the same value in bounded memory.
        for item in quantiles:
            for alias in item.aggs:
                aggs.pop(alias, None)
    materialized = None
    if one_pass:
        # Read once: any follow-up for failing uniqueness rules works on these columns, not the file.
        materialized = lf.select(_needed_columns(contract, schema)).collect(engine=engine)
        frame = planner.frame(materialized.lazy())
    if masks:
        frame = frame.with_columns(**masks)
    values = frame.select(**aggs).collect(engine=engine).row(0, named=True)
    rows = int(values["__rows"])
    if parts > 1:
        values.update(_partitioned_duplicates(frame, uniques, parts))
    if exact_quantiles:
        for item in quantiles:
            (alias,) = item.aggs
            values[alias] = _bounded_quantile(frame, *item.quantile)

    results: list[RuleResult] = []
    needs_examples: list[tuple[_Pending, RuleResult]] = []
    for n, item in enumerate(planned):
        if isinstance(item, RuleResult):
            results.append(item)
            continue
        result = item.finish(values, rows)
        results.append(result)
        if result.status == "failed" and item.mask is not None and result.failing_rows:
            if f"__e{n}_row" in values:
                result.examples = [Example(row=int(r), value=_fmt_value(v)) for r, v in
                                   zip(values[f"__e{n}_row"], values[f"__e{n}_val"], strict=False)]
            else:
                needs_examples.append((item, result))

    if needs_examples:
        source = lf if materialized is None else materialized.lazy()
        indexed = planner.frame(source.with_row_index(ROW_INDEX))
        found = _fetch_examples(indexed, needs_examples, engine, parts)
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


def _needed_columns(contract: Contract, schema: pl.Schema) -> list[str]:
    """The file's columns a contract reads: declared ones, plus those its SQL expressions name."""
    wanted = set(contract.columns)
    for rule in contract.rules:
        if rule.kind == "sql":
            wanted.update(pl.sql_expr(rule.params["sql"]).meta.root_names())
    return [name for name in schema if name in wanted] or list(schema)[:1]


# Streamed files with more rows than this check uniqueness in hash-partitioned passes.
UNIQUE_PARTITION_ROWS = 8_000_000
_HASH_SEED = 20240601


# ... and quantiles with two narrow passes beyond this many rows.
QUANTILE_IN_MEMORY_ROWS = 16_000_000
QUANTILE_BUCKETS = 1 << 16


def _row_count(lf: pl.LazyFrame) -> int:
    return int(lf.select(pl.len()).collect(engine="streaming").item())  # Parquet: from the footer


def _unique_partitions(lf: pl.LazyFrame, engine: str) -> int:
    if engine != "streaming":
        return 1
    return max(1, -(-_row_count(lf) // UNIQUE_PARTITION_ROWS))


def _bounded_quantile(frame: pl.LazyFrame, column: pl.Expr, q: float) -> float | None:
    """polars' linear quantile, exactly, holding only a histogram and one bucket's values.

    Pass 1 counts values per equal-width bucket; the ranks the interpolation needs fall in
    known buckets; pass 2 counts the distinct values of just those buckets (repeated values
    stay one entry each), which gives the values at those ranks.
    """
    value = column.cast(pl.Float64)
    value = pl.when(value.is_nan()).then(None).otherwise(value)
    stats = frame.select(n=value.count(), lo=value.min(), hi=value.max()).collect(engine="streaming").row(
        0, named=True)
    n, lo, hi = stats["n"], stats["lo"], stats["hi"]
    if not n:
        return None
    if lo == hi:
        return float(lo)
    width = (hi - lo) / QUANTILE_BUCKETS
    bucket = ((value - lo) / width).floor().clip(0, QUANTILE_BUCKETS - 1).cast(pl.Int32)
    counts = (frame.select(bucket.alias("b")).drop_nulls().group_by("b").agg(pl.len().alias("n"))
              .collect(engine="streaming").sort("b"))
    position = q * (n - 1)
    ranks = sorted({int(position // 1), min(int(-(-position // 1)), n - 1)})
    cumulative = counts["n"].cum_sum().to_list()
    buckets = counts["b"].to_list()
    wanted: dict[int, int] = {}
    for rank in ranks:
        index = next(i for i, c in enumerate(cumulative) if c > rank)
        wanted[rank] = index
    chosen = sorted({buckets[i] for i in wanted.values()})
    values = (frame.select(bucket.alias("b"), value.alias("v")).filter(pl.col("b").is_in(chosen))
              .group_by("b", "v").agg(pl.len().alias("n")).collect(engine="streaming").sort("b", "v"))
    found: dict[int, float] = {}
    for rank, index in wanted.items():
        before = cumulative[index - 1] if index else 0
        rows = values.filter(pl.col("b") == buckets[index])
        offset = rank - before
        running = 0
        for v, count in zip(rows["v"].to_list(), rows["n"].to_list(), strict=True):
            running += count
            if running > offset:
                found[rank] = float(v)
                break
    low = found[ranks[0]]
    high = found[ranks[-1]]
    return low + (high - low) * (position - ranks[0])


def _in_part(item: _Pending, part: int, parts: int) -> pl.Expr:
    return item.key_valid & (item.key.hash(seed=_HASH_SEED) % parts == part)


def _partitioned_duplicates(frame: pl.LazyFrame, uniques: list[_Pending], parts: int) -> dict[str, int]:
    """Each uniqueness rule's count (rows beyond a key's first), summed over hash partitions."""
    totals = {alias: 0 for item in uniques for alias in item.aggs}
    for part in range(parts):
        aggs = {}
        for item in uniques:
            (alias,) = item.aggs
            selected = _in_part(item, part, parts)
            aggs[alias] = (selected.sum() - item.key.filter(selected).n_unique()).cast(pl.Int64)
        row = frame.select(**aggs).collect(engine="streaming").row(0, named=True)
        for alias, value in row.items():
            totals[alias] += int(value or 0)
    return totals


def _partitioned_duplicate_rows(indexed: pl.LazyFrame, item: _Pending, parts: int) -> tuple[list, list]:
    """Examples of a uniqueness rule, one partition at a time: each holds a 1/parts share of the keys."""
    found: list[tuple[int, Any]] = []
    for part in range(parts):
        rows, values = _duplicate_rows(indexed.filter(_in_part(item, part, parts)), item, "streaming")
        found.extend(zip(rows, values, strict=True))
    found.sort(key=lambda pair: pair[0])
    return [r for r, _ in found[:EXAMPLES]], [v for _, v in found[:EXAMPLES]]


def _duplicate_rows(indexed: pl.LazyFrame, item: _Pending, engine: str = "in-memory") -> tuple[list, list]:
    """A uniqueness rule's first examples: the duplicated keys from one sort (equal neighbours),
    then only the rows holding them. Sorting costs about what n_unique does; a hash group-by or
    a first-occurrence mask over the whole column costs several times more."""
    keys = list(item.key_columns)
    duplicated = (indexed.filter(item.key_valid).select(item.key.sort().alias("__k"))
                  .filter(pl.col("__k") == pl.col("__k").shift(1)).unique())
    duplicated = duplicated.unnest("__k") if len(keys) > 1 else duplicated.rename({"__k": keys[0]})
    frame = (indexed.filter(item.key_valid).join(duplicated, on=keys, how="semi").sort(ROW_INDEX)
             .filter(~item.key.is_first_distinct()).select(pl.col(ROW_INDEX), item.value.alias("__value"))
             .head(EXAMPLES).collect(engine=engine))
    return frame[ROW_INDEX].to_list(), frame["__value"].to_list()


def _fetch_examples(indexed: pl.LazyFrame, failing: list[tuple[_Pending, RuleResult]],
                    engine: str, parts: int = 1) -> list[tuple[list, list]]:
    """Pass 2: up to EXAMPLES (row index, value) pairs per failing rule, in row order.

    Pass 1's counts tell how deep into the file each rule's first examples lie (on
    average). While that is cheap, each rule gets its own filter-then-head plan and
    the plans are collected together: the streaming engine stops each one as soon as
    it has its examples. Otherwise one full pass picks all examples at once.
    """
    if any(item.key is not None for item, _ in failing):
        others = [(item, result) for item, result in failing if item.key is None]
        rest = iter(_fetch_examples(indexed, others, engine) if others else [])
        return [(_partitioned_duplicate_rows(indexed, item, parts) if parts > 1
                 else _duplicate_rows(indexed, item, engine)) if item.key is not None else next(rest)
                for item, _ in failing]
    expected_depth = sum(min(1.0, EXAMPLES / result.failing_rows) for _, result in failing)
    total_failing = sum(result.failing_rows for _, result in failing)
    if expected_depth <= EXAMPLE_DEPTH_BUDGET or total_failing > ONE_PASS_EXAMPLE_ROWS:
        plans = [
            indexed.filter(item.mask.fill_null(False))
            .select(pl.col(ROW_INDEX), item.value.alias("__value"))
            .head(min(EXAMPLES, result.failing_rows))
            for item, result in failing
        ]
        frames = pl.collect_all(plans, engine="streaming")  # streaming, so each plan stops at its head
        return [(frame[ROW_INDEX].to_list(), frame["__value"].to_list()) for frame in frames]
    # One pass that keeps only failing rows (pass 1 counted them: few), with a flag per rule;
    # a filter streams in flat memory, unlike per-rule head() aggregates over the whole file.
    flags = {f"__f{n}": item.mask.fill_null(False) for n, (item, _) in enumerate(failing)}
    values = {f"__v{n}": item.value for n, (item, _) in enumerate(failing)}
    hits = (indexed.with_columns(**flags).filter(pl.any_horizontal(list(flags)))
            .select(pl.col(ROW_INDEX), *flags, **values).collect(engine=engine))
    found = []
    for n in range(len(failing)):
        first = hits.filter(pl.col(f"__f{n}")).sort(ROW_INDEX).head(EXAMPLES)
        found.append((first[ROW_INDEX].to_list(), first[f"__v{n}"].to_list()))
    return found


def check_file(data_file: DataFile, *, now: datetime | None = None, engines=None) -> FileResult:
    """Check one dataset; `engines` (an EnginePool) keeps DuckDB/Spark/SQL connections open across files."""
    if data_file.engine != "polars":
        from mlci.data.engine_check import check_with_engine

        return check_with_engine(data_file, now=now, engines=engines)
    started = time.perf_counter()
    scanned = scan(data_file)
    engine = engine_for(scanned.size)
    try:
        rows, results = evaluate(scanned.frame, data_file.contract, fmt=data_file.format, now=now, engine=engine)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _read_failure(data_file, exc) from None
    return FileResult(
        path=scanned.label, source=data_file.source, format=data_file.format, rows=rows,
        seconds=round(time.perf_counter() - started, 3), rules=results, note=scanned.note, engine=engine,
        version=scanned.version,
    )
