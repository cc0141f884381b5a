"""A bad contract is exit 2 with file:line:col, whether it lives in mlci.yml or in its own file."""

from __future__ import annotations

import textwrap

import pytest

from tests.data.conftest import base_frame, write


def _contract_file(project, body: str):
    path = project / "contract.yml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    write(base_frame(), project / "data.parquet")
    return path


@pytest.mark.parametrize(
    ("body", "location", "message"),
    [
        ("""\
         columns:
           amount:
             not_null: true
         """, "contract.yml:3:5", "unknown key 'not_null'; did you mean 'not-null'?"),
        ("""\
         columns:
           amount:
             dtype: flaot64
         """, "contract.yml:3:12", "unknown column type 'flaot64'; did you mean 'float64'?"),
        ("""\
         columns:
           code:
             regex: "AB-(\\\\d+"
         """, "contract.yml:3:12", "invalid regular expression"),
        ("""\
         expressions:
           - name: broken
             sql: "amount >>> 3"
         """, "contract.yml:3:10", "invalid polars SQL expression 'amount >>> 3'"),
        ("""\
         columns:
           amount:
             min: 10
             max: 1
         """, "contract.yml:3:10", "min (10) is greater than max (1)"),
        ("""\
         columns:
           amount:
             max-age: 3 months
         """, "contract.yml:3:14", "unknown unit 'months' in '3 months'; use s, m, h, d or w (months vary"),
        ("""\
         columns:
           amount: {min: "zero"}
         """, "contract.yml:2:17", "expected number or object, got str \"zero\""),
        ("""\
         columns:
           amount:
             severity: fatal
         """, "contract.yml:3:15", "\"fatal\" is not one of: \"error\", \"warn\""),
        ("""\
         columns:
           amount: {min: 1
         """, "contract.yml:3:1", "invalid YAML"),
    ],
    ids=["unknown-key", "unknown-dtype", "bad-regex", "bad-sql", "min-above-max", "bad-duration", "wrong-type",
         "bad-severity", "yaml-syntax"],
)
def test_contract_file_errors_point_at_the_line(project, run_cli, body, location, message):
    _contract_file(project, body)
    code, _out, err = run_cli("data", "check", "data.parquet", "--contract", "contract.yml")
    assert code == 2, err
    assert f"{location}: " in err, err
    assert message in err
    assert not (project / "mlci-out" / "data-check.json").exists()  # nothing half-written


def test_every_semantic_problem_is_reported_at_once(project, run_cli):
    _contract_file(project, """\
        columns:
          a: {dtype: nope}
          b: {regex: "("}
        """)
    code, _, err = run_cli("data", "check", "data.parquet", "--contract", "contract.yml")
    assert code == 2
    assert "contract.yml:2:14: unknown column type 'nope'" in err
    assert "contract.yml:3:14: invalid regular expression" in err
    assert "2 configuration error(s)" in err


@pytest.mark.parametrize(("column", "message"), [
    ('code: {regex: "[unclosed"}', "mlci.yml:7:25: invalid regular expression '[unclosed': unclosed character class"),
    ('code: {regx: "A"}',
     "mlci.yml:7:18: data.sources.train.contract.columns.code: unknown key 'regx'; did you mean 'regex'?"),
])
def test_inline_contract_errors_point_into_mlci_yml(project, run_cli, column, message):
    write(base_frame(), project / "data" / "train.parquet")
    (project / "mlci.yml").write_text(textwrap.dedent("""\
        data:
          sources:
            train:
              path: data/train.parquet
              contract:
                columns:
                  COLUMN
        """).replace("COLUMN", column))
    code, _, err = run_cli("data", "check")
    assert code == 2
    assert message in err


def test_missing_contract_file_names_it(project, run_cli):
    write(base_frame(), project / "data.parquet")
    code, _, err = run_cli("data", "check", "data.parquet", "--contract", "nope.yml")
    assert code == 2
    assert "nope.yml: file not found" in err


def test_empty_contract_file(project, run_cli):
    _contract_file(project, "")
    code, _, err = run_cli("data", "check", "data.parquet", "--contract", "contract.yml")
    assert code == 2
    assert "contract.yml:1:1: the contract file is empty" in err


VALID_CONTRACTS = [
    {"columns": {"a": {"dtype": "int64", "min": 0, "max": {"value": 9, "exclusive": True, "severity": "warn"}}}},
    {"columns": {"s": {"regex": "x+", "length": {"min": 1}, "allowed": ["x", "xx"], "max-age": "1d12h"}},
     "unique": [["s"], {"columns": ["s"], "severity": "warn"}], "rows": {"min": 1, "max": 2.0},
     "expressions": [{"sql": "s IS NOT NULL"}], "no-extra-columns": {"value": True}, "severity": "warn"},
    {"columns": {"q": {"quantiles": [{"q": 0.5, "max": 1}], "mean": {"min": -1}, "max-null-fraction": 0.5}}},
    {},
]
INVALID_CONTRACTS = [
    {"columns": {"a": {"not_null": True}}},
    {"columns": {"a": {"min": "zero"}}},
    {"columns": {"a": {"min": True}}},
    {"columns": {"a": {"max": {"exclusive": True}}}},
    {"columns": {"a": {"severity": "fatal"}}},
    {"columns": {"a": {"max-age": "three days"}}},
    {"columns": {"a": {"max-null-fraction": 1.5}}},
    {"columns": {"a": {"length": {}}}},
    {"columns": {"a": {"allowed": []}}},
    {"columns": {"a": {"quantiles": [{"q": 2, "min": 1}]}}},
    {"rows": {"min": 1.5}},
    {"unique": [[]]},
    {"expressions": [{"name": "no sql"}]},
    {"columns": ["a"]},
    ["not", "a", "mapping"],
]


def test_the_fast_validity_check_agrees_with_jsonschema():
    """`data check` skips importing jsonschema for valid contracts; it must never wave an invalid one through."""
    from jsonschema import Draft202012Validator

    from mlci.data.contract import certainly_valid, contract_schema

    validator = Draft202012Validator(contract_schema())
    for contract in VALID_CONTRACTS:
        assert validator.is_valid(contract), contract
        assert certainly_valid(contract, contract_schema()), contract
    for contract in INVALID_CONTRACTS:
        assert not validator.is_valid(contract), contract
        assert not certainly_valid(contract, contract_schema()), contract
    # YAML allows a number as a column name; the fast check leaves such cases to jsonschema.
    assert validator.is_valid({"columns": {1: {"min": 0}}})
    assert not certainly_valid({"columns": {1: {"min": 0}}}, contract_schema())


def test_a_numeric_column_name_is_a_column_name(project, run_cli):
    import polars as pl

    pl.DataFrame({"2024": [1, 2, -3]}).write_parquet(project / "data.parquet")
    (project / "contract.yml").write_text("columns:\n  2024: {min: 0}\n")
    code, _, _ = run_cli("data", "check", "data.parquet", "--contract", "contract.yml")
    assert code == 1
    from tests.data.conftest import read_json

    rules = read_json(project / "mlci-out" / "data-check.json")["files"][0]["rules"]
    assert [(r["name"], r["failing_rows"]) for r in rules] == [("2024: present", None), ("2024: min >= 0", 1)]


def test_the_documented_example_contract_is_valid(tmp_path):
    import mlci.data
    from mlci.data.contract import load_contract_file

    doc = mlci.data.__doc__
    example = doc.split("same shape (the schema is mlci/config/schemas/data.schema.json):\n\n", 1)[1]
    example = example.split("\n\n", 1)[0]
    path = tmp_path / "example.yml"
    path.write_text(textwrap.dedent(example))
    contract = load_contract_file(path)
    kinds = {rule.kind for rule in contract.rules}
    assert kinds >= {"present", "dtype", "not-null", "unique", "min", "max", "null-fraction", "allowed", "regex",
                     "length", "mean", "std", "quantile", "max-age", "no-extra-columns", "rows", "sql"}
