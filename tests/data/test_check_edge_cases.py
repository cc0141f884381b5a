"""Data that is empty, all-null, header-only, or typed differently from the contract."""

from __future__ import annotations

import polars as pl

from mlci.data.check import DataFile, check_file
from tests.data.conftest import NOW, base_frame, write
from tests.data.test_check_rules import contract_for


def _check(path, contract, fmt=None):
    fmt = fmt or path.suffix.lstrip(".")
    result = check_file(DataFile(path=path, format=fmt, source="t", contract=contract), now=NOW)
    return result, {r.name: r for r in result.rules}


def test_zero_byte_file_fails_every_required_column(tmp_path):
    for fmt in ("csv", "parquet", "ndjson"):
        path = tmp_path / f"empty.{fmt}"
        path.write_bytes(b"")
        result, rules = _check(path, contract_for())
        assert result.rows == 0
        assert result.note == "file is empty (0 bytes)"
        assert rules["amount: present"].status == "failed"
        assert rules["amount: dtype float64"].status == "skipped"
        assert rules["amount: dtype float64"].message == "column is missing"
        assert result.count("failed") == 6  # the six declared columns


def test_empty_parquet_with_a_schema_passes_row_rules_and_fails_the_row_count(tmp_path):
    path = write(base_frame().head(0), tmp_path / "none.parquet")
    contract = contract_for({"amount": {"min": 0, "not-null": True, "mean": {"min": 0}}}, rows={"min": 1})
    result, rules = _check(path, contract)
    assert result.rows == 0
    assert rules["amount: min >= 0"].status == "passed"
    assert rules["amount: not null"].failing_rows == 0
    assert rules["row count >= 1"].status == "failed"
    assert rules["amount: mean >= 0"].status == "failed"
    assert rules["amount: mean >= 0"].message == "no non-null values to compute the mean"


def test_csv_with_header_but_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("id,amount,qty,code,country,ts\n")
    contract = contract_for({"amount": {"min": 0, "not-null": True}, "code": {"regex": "AB-\\d+"}}, rows={"min": 1})
    result, rules = _check(path, contract)
    assert result.rows == 0
    # Declared types hold vacuously: there is no value that fails to parse.
    assert rules["amount: dtype float64"].status == "passed"
    assert rules["amount: min >= 0"].status == "passed"
    assert rules["code: matches AB-\\d+"].status == "passed"
    assert rules["row count >= 1"].status == "failed"
    assert [r.name for r in result.rules if r.status == "failed"] == ["row count >= 1"]


def test_csv_header_only_without_declared_types_skips_typed_rules_instead_of_failing(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("amount\n")
    from mlci.data.contract import parse_contract

    contract = parse_contract({"columns": {"amount": {"min": 0}}}, lambda p: "c.yml:1:1", origin="c.yml")
    _, rules = _check(path, contract)
    assert rules["amount: min >= 0"].status == "skipped"
    assert "declare a dtype" in rules["amount: min >= 0"].message


def test_all_null_column_in_parquet(tmp_path):
    frame = base_frame().with_columns(pl.lit(None, dtype=pl.Float64).alias("amount"))
    path = write(frame, tmp_path / "nulls.parquet")
    contract = contract_for({"amount": {"not-null": True, "min": 0, "max-null-fraction": 0.5, "mean": {"max": 1}}})
    _, rules = _check(path, contract)
    assert rules["amount: dtype float64"].status == "passed"
    assert rules["amount: not null"].failing_rows == 100
    assert rules["amount: not null"].failing_fraction == 1.0
    assert rules["amount: null fraction <= 0.5"].status == "failed"
    assert rules["amount: min >= 0"].status == "passed"  # nulls are for not-null to judge
    assert rules["amount: mean <= 1"].message == "no non-null values to compute the mean"


def test_all_null_column_in_csv_keeps_its_declared_type(tmp_path):
    frame = base_frame().with_columns(pl.lit(None, dtype=pl.Float64).alias("amount"))
    path = write(frame, tmp_path / "nulls.csv")
    contract = contract_for({"amount": {"min": 0, "not-null": {"value": True, "severity": "warn"}}})
    result, rules = _check(path, contract)
    assert rules["amount: dtype float64"].status == "passed"
    assert rules["amount: min >= 0"].status == "passed"
    assert rules["amount: not null"].failing_rows == 100
    assert result.count("failed") == 0 and result.count("warning") == 1


def test_parquet_schema_that_contradicts_the_contract(tmp_path):
    frame = base_frame().with_columns(pl.col("amount").cast(pl.String), pl.col("qty").cast(pl.Int32))
    path = write(frame, tmp_path / "typed.parquet")
    contract = contract_for({"amount": {"min": 0, "not-null": True}, "qty": {"min": 0}})
    _, rules = _check(path, contract)
    dtype_rule = rules["amount: dtype float64"]
    assert dtype_rule.status == "failed"
    assert dtype_rule.message == "Parquet schema has String, contract says float64"
    # A numeric rule on a string column is skipped (the dtype failure says why) ...
    assert rules["amount: min >= 0"].status == "skipped"
    assert rules["amount: min >= 0"].message == "column is String; see the dtype rule"
    # ... but rules that do not care about the type still run.
    assert rules["amount: not null"].status == "passed"
    # int32 is not int64, yet min still works on it.
    assert rules["qty: dtype int64"].status == "failed"
    assert rules["qty: min >= 0"].status == "passed"


def test_dtype_families_accept_any_width(tmp_path):
    from mlci.data.contract import parse_contract

    frame = base_frame().with_columns(pl.col("qty").cast(pl.UInt8), pl.col("amount").cast(pl.Float32))
    path = write(frame, tmp_path / "narrow.parquet")
    contract = parse_contract({"columns": {"qty": {"dtype": "integer"}, "amount": {"dtype": "numeric"},
                                           "country": {"dtype": "float"}}}, lambda p: "c:1:1", origin="c")
    _, rules = _check(path, contract)
    assert rules["qty: dtype integer"].status == "passed"
    assert rules["amount: dtype numeric"].status == "passed"
    assert rules["country: dtype float"].status == "failed"


def test_csv_values_that_do_not_parse_as_the_declared_type_are_counted_with_examples(tmp_path):
    path = tmp_path / "dirty.csv"
    path.write_text("amount,ts,flag\n1.5,2025-06-01T10:00:00,true\nabc,yesterday,maybe\n,2025-06-01,0\n"
                    "3e2,2025-06-01 11:00:00+02:00,FALSE\n")
    from mlci.data.contract import parse_contract

    contract = parse_contract({"columns": {"amount": {"dtype": "float64", "min": 0},
                                           "ts": {"dtype": "datetime"}, "flag": {"dtype": "boolean"}}},
                              lambda p: "c:1:1", origin="c")
    _, rules = _check(path, contract)
    amount = rules["amount: dtype float64"]
    assert (amount.status, amount.failing_rows) == ("failed", 1)  # the empty field is a null, not a bad value
    assert [(e.row, e.value) for e in amount.examples] == [(1, "'abc'")]
    assert amount.message == "values not readable as float64"
    assert rules["amount: min >= 0"].status == "passed"  # 'abc' is not counted twice
    assert [(e.row, e.value) for e in rules["ts: dtype datetime"].examples] == [(1, "'yesterday'")]
    assert [(e.row, e.value) for e in rules["flag: dtype boolean"].examples] == [(1, "'maybe'")]


def test_custom_expression_that_names_a_missing_column_fails_with_a_reason(tmp_path):
    path = write(base_frame(), tmp_path / "d.parquet")
    contract = contract_for(expressions=[{"sql": "nope > 1"}, {"sql": "amount + 1", "name": "not boolean"}])
    _, rules = _check(path, contract)
    assert rules["expression: nope > 1"].status == "failed"
    assert rules["expression: nope > 1"].message.startswith("cannot evaluate on this file")
    assert rules["not boolean"].message == "expression gives Float64, not a boolean"


def test_optional_absent_column_skips_its_rules_without_failing(tmp_path):
    path = write(base_frame().drop("qty"), tmp_path / "d.parquet")
    contract = contract_for({"qty": {"required": False, "min": 0}})
    result, rules = _check(path, contract)
    assert "qty: present" not in rules
    assert rules["qty: min >= 0"].status == "skipped"
    assert rules["qty: min >= 0"].message == "optional column is absent"
    assert result.count("failed") == 0


def test_a_categorical_column_is_checked_like_text(tmp_path):
    frame = base_frame().with_columns(pl.col("country").cast(pl.Categorical))
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("xx")).otherwise(pl.col("country"))
                               .cast(pl.Categorical).alias("country"))
    path = write(frame, tmp_path / "cat.parquet")
    from mlci.data.contract import parse_contract

    contract = parse_contract({"columns": {"country": {"dtype": "categorical", "allowed": ["DE", "FR", "IT"],
                                                       "regex": "[A-Z]{2}", "length": {"max": 2}}}},
                              lambda p: "c:1:1", origin="c")
    _, rules = _check(path, contract)
    assert rules["country: dtype categorical"].status == "passed"
    assert rules["country: in [DE, FR, IT]"].failing_rows == 1
    assert rules["country: matches [A-Z]{2}"].failing_rows == 1
    assert rules["country: length <= 2"].status == "passed"
