"""Every rule kind: passes on clean data, fails on planted bad rows with exact counts and examples.

The matrix runs on Parquet, CSV and NDJSON, so text parsing is held to the
same counts as typed Parquet columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import polars as pl
import pytest

from mlci.data.check import DataFile, check_file
from mlci.data.contract import parse_contract
from tests.data.conftest import NOW, ROWS, base_frame, write

DTYPES = {"id": "int64", "amount": "float64", "qty": "int64", "code": "string", "country": "string",
          "ts": "datetime"}


def contract_for(column_rules: dict | None = None, **table_rules):
    columns = {name: {"dtype": dtype} for name, dtype in DTYPES.items()}
    for name, rules in (column_rules or {}).items():
        columns[name] = {**columns.get(name, {}), **rules}
    return parse_contract({"columns": columns, **table_rules}, lambda path: f"contract.yml:{len(path)}:1",
                          origin="contract.yml")


def set_rows(column: str, rows: list[int], value) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def mutate(frame: pl.DataFrame) -> pl.DataFrame:
        dtype = frame.schema[column]
        hit = pl.int_range(pl.len()).is_in(rows)
        return frame.with_columns(pl.when(hit).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(column)).alias(column))
    return mutate


@dataclass
class Case:
    id: str
    rule: str  # the rule's report name
    contract: dict
    mutate: Callable[[pl.DataFrame], pl.DataFrame]
    failing: int | None  # exact failing rows (None: an aggregate rule)
    examples: list[int]  # row indices of the reported examples


CASES = [
    Case("not-null", "amount: not null", {"columns": {"amount": {"not-null": True}}},
         set_rows("amount", [3, 50, 77], None), 3, [3, 50, 77]),
    Case("max-null-fraction", "amount: null fraction <= 0.02", {"columns": {"amount": {"max-null-fraction": 0.02}}},
         set_rows("amount", [3, 50, 77], None), 3, [3, 50, 77]),
    Case("unique", "id: unique", {"columns": {"id": {"unique": True}}},
         set_rows("id", [10, 20], 5), 2, [10, 20]),
    Case("unique-set", "code, country: unique together", {"table": {"unique": [["code", "country"]]}},
         set_rows("code", [40], "AB-004"), 1, [40]),
    Case("min", "amount: min >= 0", {"columns": {"amount": {"min": 0}}},
         set_rows("amount", [7, 8], -1.0), 2, [7, 8]),
    Case("min-exclusive", "qty: min > 0", {"columns": {"qty": {"min": {"value": 0, "exclusive": True}}}},
         set_rows("qty", [], 0), 10, [0, 10, 20, 30, 40]),
    Case("max", "amount: max <= 99", {"columns": {"amount": {"max": 99}}},
         set_rows("amount", [42], 1000.0), 1, [42]),
    Case("max-exclusive", "id: max < 99", {"columns": {"id": {"max": {"value": 99, "exclusive": True}}}},
         set_rows("id", [], 0), 1, [99]),
    Case("allowed", "country: in [DE, FR, IT]", {"columns": {"country": {"allowed": ["DE", "FR", "IT"]}}},
         set_rows("country", [1, 2], "XX"), 2, [1, 2]),
    Case("allowed-numbers", "qty: in [0, 1, 2, 3, 4, ... (10 values)]",
         {"columns": {"qty": {"allowed": list(range(10))}}}, set_rows("qty", [66], 11), 1, [66]),
    Case("regex", "code: matches AB-\\d{3}", {"columns": {"code": {"regex": "AB-\\d{3}"}}},
         # "xAB-011" contains a match but is not one: the pattern must match the whole value
         lambda f: set_rows("code", [11], "xAB-011")(set_rows("code", [9], "AB-1")(f)), 2, [9, 11]),
    Case("length", "code: length in [6, 6]", {"columns": {"code": {"length": {"min": 6, "max": 6}}}},
         lambda f: set_rows("code", [12], "AB-0012")(set_rows("code", [9], "AB-1")(f)), 2, [9, 12]),
    Case("sql", "amount covers qty", {"table": {"expressions": [{"name": "amount covers qty",
                                                                 "sql": "amount >= qty"}]}},
         set_rows("amount", [5, 6], 1.0), 2, [5, 6]),
    Case("rows", "row count in [1, 99]", {"table": {"rows": {"min": 1, "max": 99}}},
         lambda f: f, None, []),  # clean data has 100 rows: the bound itself is the planted fault
    Case("max-age", "ts: newest value within 2d", {"columns": {"ts": {"max-age": "2d"}}},
         lambda f: f.with_columns(pl.col("ts") - timedelta(days=10)), None, []),
    Case("mean", "amount: mean in [49, 50]", {"columns": {"amount": {"mean": {"min": 49, "max": 50}}}},
         set_rows("amount", [99], 10_000.0), None, []),
    Case("std", "amount: std <= 30", {"columns": {"amount": {"std": {"max": 30}}}},
         set_rows("amount", [99], 10_000.0), None, []),
    Case("quantile", "amount: quantile 0.5 in [49, 50]",
         {"columns": {"amount": {"quantiles": [{"q": 0.5, "min": 49, "max": 50}]}}},
         lambda f: f.with_columns(pl.col("amount") * 2), None, []),
    Case("present", "id: present", {"columns": {}}, lambda f: f.drop("id"), None, []),
    Case("no-extra-columns", "no unexpected columns", {"table": {"no-extra-columns": True}},
         lambda f: f.with_columns(pl.lit(1).alias("surprise")), None, []),
]

# Rules that hold on clean data only through the mutation's absence (exclusive bounds are
# planted through the contract: clean data sits exactly on the bound).
FAILS_ON_CLEAN = {"min-exclusive", "max-exclusive", "rows"}


@pytest.fixture(params=["in-memory", "streaming"])
def engine(request, monkeypatch):
    """Both polars engines must give the same answers (small files use in-memory, big ones streaming)."""
    import mlci.data.check

    monkeypatch.setattr(mlci.data.check, "STREAMING_FROM_BYTES", 0 if request.param == "streaming" else 2**62)
    return request.param


def _contract(case: Case):
    return contract_for(case.contract.get("columns"), **case.contract.get("table", {}))


def _run(tmp_path, frame: pl.DataFrame, case: Case, fmt: str):
    path = write(frame, tmp_path / f"data.{fmt}")
    result = check_file(DataFile(path=path, format=fmt, source="t", contract=_contract(case)), now=NOW)
    by_name = {rule.name: rule for rule in result.rules}
    assert result.engine in ("in-memory", "streaming")
    assert case.rule in by_name, sorted(by_name)
    return result, by_name[case.rule]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_fails_on_planted_rows_with_exact_counts(tmp_path, case, fmt, engine):
    result, rule = _run(tmp_path, case.mutate(base_frame()), case, fmt)
    assert result.engine == engine
    assert rule.status == "failed", rule
    assert rule.outcome == "failed"
    if case.failing is not None:
        assert rule.failing_rows == case.failing
        assert rule.failing_fraction == pytest.approx(case.failing / ROWS)
        assert [e.row for e in rule.examples] == case.examples
    # Only the rule under test fails; the planted rows do not leak into other rules.
    others = [r.name for r in result.rules if r.status == "failed" and r.name != case.rule]
    assert others == []


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson"])
@pytest.mark.parametrize("case", [c for c in CASES if c.id not in FAILS_ON_CLEAN], ids=lambda c: c.id)
def test_rule_passes_on_clean_data(tmp_path, case, fmt, engine):
    result, rule = _run(tmp_path, base_frame(), case, fmt)
    assert rule.status == "passed", rule
    assert [r.name for r in result.rules if r.status != "passed"] == []


def test_examples_show_the_failing_values(tmp_path):
    case = next(c for c in CASES if c.id == "regex")
    _, rule = _run(tmp_path, case.mutate(base_frame()), case, "parquet")
    assert [(e.row, e.value) for e in rule.examples] == [(9, "'AB-1'"), (11, "'xAB-011'")]


def test_examples_are_capped_at_five_but_the_count_is_exact(tmp_path, engine):
    bad = list(range(0, 100, 3))  # 34 rows
    case = Case("many", "amount: min >= 0", {"columns": {"amount": {"min": 0}}},
                set_rows("amount", bad, -2.0), 34, bad[:5])
    _, rule = _run(tmp_path, case.mutate(base_frame()), case, "parquet")
    assert rule.failing_rows == 34
    assert [e.row for e in rule.examples] == [0, 3, 6, 9, 12]
    assert {e.value for e in rule.examples} == {"-2"}


@pytest.mark.parametrize("budget", [0.0, 100.0], ids=["one-full-pass", "per-rule-early-stop"])
def test_rare_failures_late_in_the_file_still_get_their_examples(tmp_path, engine, budget, monkeypatch):
    """Pass 2 must find examples wherever they are, whichever of its two strategies runs."""
    import mlci.data.check

    monkeypatch.setattr(mlci.data.check, "EXAMPLE_DEPTH_BUDGET", budget)
    frame = base_frame(20_000)
    bad = [19_990, 19_995]
    frame = set_rows("amount", bad, -1.0)(frame)
    frame = set_rows("code", [19_999], "bad")(frame)
    contract = contract_for({"amount": {"min": 0}, "code": {"regex": "AB-\\d+"}})
    path = write(frame, tmp_path / "late.parquet")
    result = check_file(DataFile(path=path, format="parquet", source="t", contract=contract), now=NOW)
    by_name = {r.name: r for r in result.rules}
    assert [e.row for e in by_name["amount: min >= 0"].examples] == bad
    assert [(e.row, e.value) for e in by_name["code: matches AB-\\d+"].examples] == [(19_999, "'bad'")]


def test_warn_severity_is_reported_but_is_not_an_error(tmp_path):
    contract = contract_for({"amount": {"min": {"value": 0, "severity": "warn"}, "max": 50}})
    frame = set_rows("amount", [1], -1.0)(base_frame())
    path = write(frame, tmp_path / "d.parquet")
    result = check_file(DataFile(path=path, format="parquet", source="t", contract=contract), now=NOW)
    outcomes = {r.name: r.outcome for r in result.rules}
    assert outcomes["amount: min >= 0"] == "warning"
    assert outcomes["amount: max <= 50"] == "failed"


def test_column_severity_applies_to_its_rules_and_rule_severity_wins(tmp_path):
    contract = contract_for({"code": {"severity": "warn", "regex": "AB-\\d+",
                                      "length": {"min": 6, "max": 6, "severity": "error"}}})
    severities = {r.name: r.severity for r in contract.rules}
    assert severities["code: matches AB-\\d+"] == "warn"
    assert severities["code: length in [6, 6]"] == "error"
    assert severities["code: present"] == "warn"


def test_big_files_are_streamed():
    from mlci.data.check import STREAMING_FROM_BYTES, engine_for

    assert engine_for(STREAMING_FROM_BYTES) == "streaming"
    assert engine_for(STREAMING_FROM_BYTES - 1) == "in-memory"
