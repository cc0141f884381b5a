"""A contract compiled into aggregate SQL for DuckDB, Spark SQL or any SQLAlchemy warehouse.

The rules are built once as sqlglot expressions and rendered per dialect, so
one compiler serves every engine. Like the polars engine, every rule of a
dataset becomes one aggregate in ONE query (one scan where the data lives);
multi-column uniqueness needs its own GROUP BY query, and failing row rules
fetch a few example rows with LIMIT queries that stop early. Verdicts come
from the same judge_* functions as the polars engine, so the two agree.

Pure: no connection here. `run()` takes a callable that executes SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlglot
from sqlglot import exp

from mlci.data.check import (
    EXAMPLES,
    FLOAT_NAMES,
    NEEDS,
    NUMERIC,
    STRINGISH,
    Example,
    RuleResult,
    _fmt_value,
    judge_freshness,
    judge_row_count,
    judge_rows_failing,
    judge_statistic,
    make_result,
)
from mlci.data.contract import Contract, Rule, dtype_accepts

RELATION = "__mlci_data"
ROW_NUMBER = "__mlci_row"  # a row-number column the engine may add (file order), for example rows

# sqlglot type -> the polars class name the contract's dtype names are checked against.
_TYPE_GROUPS = {
    "Int8": ("TINYINT",), "Int16": ("SMALLINT",), "Int32": ("INT", "MEDIUMINT"), "Int64": ("BIGINT",),
    "UInt8": ("UTINYINT",), "UInt16": ("USMALLINT",), "UInt32": ("UINT", "UMEDIUMINT"), "UInt64": ("UBIGINT",),
    "Float32": ("FLOAT",), "Float64": ("DOUBLE",),
    "Decimal": ("DECIMAL", "BIGDECIMAL", "INT128", "UINT128", "INT256", "UINT256", "MONEY", "SMALLMONEY"),
    "String": ("TEXT", "VARCHAR", "CHAR", "NVARCHAR", "NCHAR", "NAME", "UUID", "BPCHAR"),
    "Enum": ("ENUM",), "Boolean": ("BOOLEAN",), "Date": ("DATE", "DATE32"), "Time": ("TIME",),
    "Datetime": ("TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMPLTZ", "TIMESTAMPNTZ", "TIMESTAMP_S", "TIMESTAMP_MS",
                 "TIMESTAMP_NS", "DATETIME", "DATETIME2", "DATETIME64", "SMALLDATETIME"),
    "Duration": ("INTERVAL",),
}
TYPE_NAMES = {
    getattr(exp.DataType.Type, member): polars_name
    for polars_name, members in _TYPE_GROUPS.items() for member in members if hasattr(exp.DataType.Type, member)
}
# Spark spells these with names sqlglot does not parse as types.
_SPARK_NAMES = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}


def type_name(type_text: str, dialect: str) -> str:
    """An engine's column type (as it prints it) as a polars class name: BIGINT -> Int64, text -> String."""
    text = _SPARK_NAMES.get(type_text.strip().lower(), type_text) if dialect == "spark" else type_text
    try:
        kind = exp.DataType.build(text, dialect=dialect).this
    except Exception:  # an engine-specific type sqlglot does not know: shown as written
        return type_text.strip()
    return TYPE_NAMES.get(kind, type_text.strip().split("(")[0].title())


def col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def lit(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value) if isinstance(value, float) else value)
    return exp.Literal.string(str(value))


def count_where(condition: exp.Expression) -> exp.Expression:
    """Rows where `condition` is true; NULL counts as not failing, as in the polars engine."""
    return exp.func("SUM", exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
                                    default=exp.Literal.number(0)))


def quantile(column: exp.Expression, q: float, dialect: str) -> exp.Expression:
    """Linear-interpolated quantile (polars' "linear"), exact in every engine."""
    if dialect in ("spark", "databricks"):
        # sqlglot renders PERCENTILE_CONT as Spark's approximate function; PERCENTILE is exact.
        return exp.Anonymous(this="PERCENTILE", expressions=[column, lit(q)])
    return exp.WithinGroup(this=exp.PercentileCont(this=lit(q)),
                           expression=exp.Order(expressions=[exp.Ordered(this=column)]))


@dataclass
class _Pending:
    rule: Rule
    aggs: dict[str, exp.Expression]
    finish: Callable[[dict[str, Any], int], RuleResult]
    mask: exp.Expression | None = None  # failing rows, for examples
    value: list[str] = field(default_factory=list)  # columns shown in examples
    key: tuple[str, ...] = ()  # uniqueness rules: examples are the duplicated keys
    key_valid: exp.Expression | None = None  # multi-column keys: rows whose key has no null


@dataclass
class EngineSchema:
    """What the engine says about the dataset: column -> polars class name, in order."""

    columns: dict[str, str]
    source_label: str = "table schema"  # for dtype mismatch messages
    has_row_number: bool = False  # the relation carries ROW_NUMBER (file order)


class SqlPlanner:
    def __init__(self, contract: Contract, schema: EngineSchema, dialect: str, now: datetime):
        self.contract = contract
        self.schema = schema
        self.dialect = dialect
        self.now = now

    def plan(self) -> list[RuleResult | _Pending]:
        self.blocked = {
            spec.name: "column is missing" if spec.required else "optional column is absent"
            for spec in self.contract.columns.values() if spec.name not in self.schema.columns
        }
        return [self.plan_rule(index, rule) for index, rule in enumerate(self.contract.rules)]

    def row_rule(self, rule: Rule, index: int, mask: exp.Expression, value: list[str], *,
                 max_fraction: float | None = None, count: exp.Expression | None = None) -> _Pending:
        alias = f"r{index}"
        return _Pending(rule, {alias: count if count is not None else count_where(mask)},
                        lambda values, rows: judge_rows_failing(rule, values[alias], rows, max_fraction),
                        mask=mask, value=value)

    def stat_rule(self, rule: Rule, index: int, expr: exp.Expression, low: Any, high: Any, what: str) -> _Pending:
        alias = f"r{index}"
        return _Pending(rule, {alias: expr}, lambda values, rows: judge_statistic(rule, values[alias], low, high, what))

    def plan_rule(self, index: int, rule: Rule) -> RuleResult | _Pending:
        kind, column, columns = rule.kind, rule.column, self.schema.columns
        if kind == "present":
            return make_result(rule, "passed") if column in columns else make_result(rule, "failed",
                                                                                     "column is missing")
        if kind == "no-extra-columns":
            extra = [c for c in columns if c not in self.contract.columns]
            if not extra:
                return make_result(rule, "passed")
            shown = ", ".join(extra[:8]) + (f", ... ({len(extra)} columns)" if len(extra) > 8 else "")
            return make_result(rule, "failed", f"unexpected column(s): {shown}", observed=extra)
        if kind == "rows":
            return _Pending(rule, {}, lambda values, rows: judge_row_count(rule, rows))
        if kind == "sql":
            return self.plan_sql(index, rule)
        if kind == "unique" and len(rule.columns) > 1:
            return self.plan_unique_set(index, rule)
        if column in self.blocked:
            return make_result(rule, "skipped", self.blocked[column])
        actual = columns[column]
        if kind == "dtype":
            declared = rule.params["dtype"]
            if dtype_accepts(declared, actual):
                return make_result(rule, "passed", observed=actual)
            return make_result(rule, "failed", f"{self.schema.source_label} has {actual}, contract says {declared}",
                               observed=actual)
        if kind in NEEDS and actual not in NEEDS[kind][0]:
            declared = self.contract.columns.get(column)
            if declared and declared.dtype and not dtype_accepts(declared.dtype, actual):
                return make_result(rule, "skipped", f"column is {actual}; see the dtype rule")
            return make_result(rule, "failed", f"cannot evaluate: column is {actual}, this rule needs "
                                               f"{NEEDS[kind][1]} column")
        c = col(column)
        p = rule.params
        if kind in ("not-null", "null-fraction"):
            return self.row_rule(rule, index, exp.Is(this=c, expression=exp.Null()), [column],
                                 max_fraction=p["max"] if kind == "null-fraction" else None)
        if kind == "unique":
            count = exp.Sub(this=exp.func("COUNT", c),
                            expression=exp.Count(this=exp.Distinct(expressions=[c.copy()])))
            pending = self.row_rule(rule, index, exp.Is(this=c.copy(), expression=exp.Null()), [column], count=count)
            pending.key = (column,)
            pending.key_valid = exp.Not(this=exp.Is(this=col(column), expression=exp.Null()))
            return pending
        if kind == "min":
            mask = exp.LTE(this=c, expression=lit(p["value"])) if p["exclusive"] else exp.LT(
                this=c, expression=lit(p["value"]))
            return self.row_rule(rule, index, mask, [column])
        if kind == "max":
            mask = exp.GTE(this=c, expression=lit(p["value"])) if p["exclusive"] else exp.GT(
                this=c, expression=lit(p["value"]))
            return self.row_rule(rule, index, mask, [column])
        if kind == "allowed":
            return self.plan_allowed(index, rule, actual)
        if kind == "regex":
            text = c if actual == "String" else exp.cast(c, exp.DataType.build("TEXT"))
            mask = exp.Not(this=exp.RegexpLike(this=text, expression=lit(f"^(?:{p['pattern']})$")))
            return self.row_rule(rule, index, mask, [column])
        if kind == "length":
            length = exp.Length(this=c)
            parts = []
            if p["min"] is not None:
                parts.append(exp.LT(this=length, expression=lit(p["min"])))
            if p["max"] is not None:
                parts.append(exp.GT(this=length.copy(), expression=lit(p["max"])))
            return self.row_rule(rule, index, exp.or_(*parts), [column])
        if kind == "mean":
            return self.stat_rule(rule, index, exp.Avg(this=c), p["min"], p["max"], "mean")
        if kind == "std":
            return self.stat_rule(rule, index, exp.StddevSamp(this=c), p["min"], p["max"], "std")
        if kind == "quantile":
            return self.stat_rule(rule, index, quantile(c, p["q"], self.dialect), p["min"], p["max"],
                                  f"quantile {p['q']:g}")
        if kind == "max-age":
            alias = f"r{index}"
            return _Pending(rule, {alias: exp.Max(this=c)},
                            lambda values, rows: judge_freshness(rule, values[alias], self.now))
        raise AssertionError(f"unhandled rule kind {kind}")

    def plan_allowed(self, index: int, rule: Rule, actual: str) -> RuleResult | _Pending:
        values = rule.params["values"]
        kinds = {type(v) for v in values}
        if actual in NUMERIC:
            if bool in kinds or str in kinds:
                return make_result(rule, "failed", f"cannot evaluate: column is {actual} but allowed values "
                                                   "are not all numbers")
            values = [float(v) for v in values] if (float in kinds or actual in FLOAT_NAMES) else values
        elif actual in STRINGISH:
            if kinds != {str}:
                return make_result(rule, "failed", f"cannot evaluate: column is {actual} but allowed values "
                                                   "are not all strings")
        elif actual == "Boolean":
            if kinds != {bool}:
                return make_result(rule, "failed", "cannot evaluate: column is Boolean but allowed values "
                                                   "are not all true/false")
        else:
            return make_result(rule, "failed", f"cannot evaluate: allowed values on a {actual} column")
        mask = exp.Not(this=exp.In(this=col(rule.column), expressions=[lit(v) for v in values]))
        return self.row_rule(index=index, rule=rule, mask=mask, value=[rule.column])

    def plan_sql(self, index: int, rule: Rule) -> RuleResult | _Pending:
        try:
            parsed = sqlglot.parse_one(rule.params["sql"], read="postgres")
            parsed.sql(dialect=self.dialect)
        except Exception as exc:  # sqlglot's parse and unsupported-feature errors
            return make_result(rule, "failed", f"cannot translate for this engine: {str(exc).splitlines()[0]}")
        names = [c.name for c in parsed.find_all(exp.Column)]
        unknown = [n for n in dict.fromkeys(names) if n not in self.schema.columns]
        if unknown:
            return make_result(rule, "failed", f"cannot evaluate on this data: unknown column(s) {', '.join(unknown)}")
        text = rule.params["sql"]
        shown = sorted(dict.fromkeys(names), key=lambda n: (text.find(n) if n in text else len(text)))[:4]
        for column in parsed.find_all(exp.Column):
            column.this.set("quoted", True)
        return self.row_rule(rule, index, exp.Not(this=exp.Paren(this=parsed)), shown)

    def plan_unique_set(self, index: int, rule: Rule) -> RuleResult | _Pending:
        missing = [c for c in rule.columns if c not in self.schema.columns]
        if missing:
            declared_required = all(c in self.contract.columns and self.contract.columns[c].required for c in missing)
            return make_result(rule, "skipped" if declared_required else "failed",
                               f"missing column(s): {', '.join(missing)}")
        # Rows beyond the first of each key: sum(count - 1) over the non-null keys, in its own query.
        valid = exp.and_(*[exp.Not(this=exp.Is(this=col(c), expression=exp.Null())) for c in rule.columns])
        alias = f"u{index}"
        return _Pending(rule, {}, lambda values, rows: judge_rows_failing(rule, values[alias], rows),
                        mask=valid, value=list(rule.columns), key=tuple(rule.columns), key_valid=valid)


@dataclass
class EngineRun:
    rows: int
    results: list[RuleResult]
    queries: int


def _render(expression: exp.Expression, dialect: str) -> str:
    return expression.sql(dialect=dialect, identify=True)


def default_relation() -> exp.Table:
    return exp.Table(this=exp.to_identifier(RELATION, quoted=True))


def aggregate_query(pending: list[_Pending], dialect: str, relation: exp.Table) -> tuple[str, list[str]]:
    """One SELECT of every rule's aggregate over the dataset; returns (sql, aliases in order)."""
    selects = [exp.alias_(exp.Count(this=exp.Star()), "n_rows", quoted=True)]
    aliases = ["n_rows"]
    for item in pending:
        for alias, expression in item.aggs.items():
            selects.append(exp.alias_(expression, alias, quoted=True))
            aliases.append(alias)
    query = exp.select(*selects).from_(relation.copy())
    return _render(query, dialect), aliases


def unique_query(columns: tuple[str, ...], valid: exp.Expression, dialect: str, relation: exp.Table) -> str:
    grouped = (exp.select(exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True)).from_(relation.copy())
               .where(valid).group_by(*[col(c) for c in columns]))
    outer = exp.select(exp.func("SUM", exp.Sub(this=exp.column("n", quoted=True), expression=exp.Literal.number(1))))
    return _render(outer.from_(grouped.subquery("g")), dialect)


MAX_EXAMPLE_COLUMNS = 4


def _example_branch(index: int, item: _Pending, with_row_number: bool, relation: exp.Table) -> exp.Select:
    """One failing rule's examples as (rule, row, v0..v3) text columns, LIMITed so the engine can stop early.

    Uniqueness rules show keys that occur more than once (a GROUP BY); other rules show failing rows.
    """
    text = exp.DataType.build("TEXT")
    values = [exp.cast(col(c), text) for c in (item.key or item.value)][:MAX_EXAMPLE_COLUMNS]
    values += [exp.cast(exp.Null(), text)] * (MAX_EXAMPLE_COLUMNS - len(values))
    row = col(ROW_NUMBER) if with_row_number and not item.key else exp.Null()
    selects = [exp.alias_(exp.Literal.number(index), "k", quoted=True),
               exp.alias_(exp.cast(row, exp.DataType.build("BIGINT")), "r", quoted=True),
               *[exp.alias_(v, f"v{n}", quoted=True) for n, v in enumerate(values)]]
    if item.key:
        inner = (exp.select(*selects).from_(relation.copy()).where(item.key_valid.copy())
                 .group_by(*[col(c) for c in item.key])
                 .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))))
    else:
        inner = exp.select(*selects).from_(relation.copy()).where(item.mask.copy())
    return exp.select(exp.Star()).from_(inner.limit(EXAMPLES).subquery(f"e{index}"))


def examples_query(failing: list[tuple[int, _Pending]], dialect: str, with_row_number: bool,
                   relation: exp.Table) -> str:
    """Every failing rule's examples in one statement (one round trip, one job on Spark)."""
    branches = [_example_branch(index, item, with_row_number, relation) for index, item in failing]
    query = branches[0]
    for branch in branches[1:]:
        query = exp.union(query, branch, distinct=False)
    return _render(query, dialect)


def evaluate(contract: Contract, schema: EngineSchema, dialect: str, execute: Callable[[str], list[tuple]], *,
             now: datetime, relation: exp.Table | None = None) -> EngineRun:
    """Plan, run the aggregate query (plus unique-set and example queries), judge every rule."""
    relation = relation or default_relation()
    planner = SqlPlanner(contract, schema, dialect, now)
    planned = planner.plan()
    pending = [item for item in planned if isinstance(item, _Pending)]
    sql, aliases = aggregate_query(pending, dialect, relation)
    row = execute(sql)[0]
    values = dict(zip(aliases, row, strict=True))
    queries = 1
    rows = int(values["n_rows"] or 0)
    for index, item in enumerate(planned):
        if isinstance(item, _Pending) and len(item.key) > 1:
            values[f"u{index}"] = execute(unique_query(item.key, item.key_valid, dialect, relation))[0][0]
            queries += 1
    results: list[RuleResult] = []
    failing: list[tuple[int, _Pending, RuleResult]] = []
    for index, item in enumerate(planned):
        if isinstance(item, RuleResult):
            results.append(item)
            continue
        result = item.finish(values, rows)
        results.append(result)
        if result.status == "failed" and item.mask is not None and result.failing_rows:
            failing.append((index, item, result))
    if failing:
        found = execute(examples_query([(index, item) for index, item, _ in failing], dialect,
                                       schema.has_row_number, relation))
        queries += 1
        by_rule: dict[int, list[tuple]] = {}
        for record in found:
            by_rule.setdefault(int(record[0]), []).append(record)
        for index, item, result in failing:
            names = list(item.key or item.value)[:MAX_EXAMPLE_COLUMNS]
            records = sorted(by_rule.get(index, []), key=lambda r: (r[1] is None, r[1] or 0))
            result.examples = [_example(record, names, schema.columns) for record in records]
    return EngineRun(rows=rows, results=results, queries=queries)


def _text_value(text: Any, type_name_: str | None) -> str:
    """An example value fetched as text, shown as the polars engine shows the typed value."""
    if text is None:
        return "null"
    text = str(text)
    if type_name_ in ("String", "Enum", "Categorical"):
        return _fmt_value(text)
    if type_name_ in FLOAT_NAMES:
        try:
            return _fmt_value(float(text))
        except ValueError:
            return text
    return text


def _example(record: tuple, names: list[str], types: dict[str, str]) -> Example:
    row = int(record[1]) if record[1] is not None else None
    shown = [_text_value(value, types.get(name)) for name, value in zip(names, record[2:], strict=False)]
    value = shown[0] if len(shown) == 1 else "(" + ", ".join(f"{n}={v}" for n, v in zip(names, shown,
                                                                                          strict=True)) + ")"
    return Example(row=row, value=value)

