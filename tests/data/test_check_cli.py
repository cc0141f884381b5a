"""`mlci data check` end to end: files in, exit code and the three reports out."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import polars as pl

from tests.data.conftest import base_frame, junit_counts, read_json, write

CONTRACT = """\
columns:
  id: {dtype: int64, unique: true}
  amount: {dtype: float64, min: 0}
  code: {regex: 'AB-\\d{3}', severity: warn}
  country: {allowed: [DE, FR, IT]}
rows: {min: 1}
"""


def _bad_frame() -> pl.DataFrame:
    frame = base_frame()
    row = pl.int_range(pl.len())
    return frame.with_columns(
        pl.when(row.is_in([7, 8])).then(-1.0).otherwise(pl.col("amount")).alias("amount"),
        pl.when(row == 9).then(pl.lit("zz")).otherwise(pl.col("code")).alias("code"),
    )


def test_clean_data_exits_0_and_writes_every_report(project, run_cli):
    write(base_frame(), project / "data.parquet")
    (project / "contract.yml").write_text(CONTRACT)
    code, out, err = run_cli("data", "check", "data.parquet", "--contract", "contract.yml")
    assert code == 0, err
    out_dir = project / "mlci-out"
    report = read_json(out_dir / "data-check.json")
    assert report["version"] == 1
    assert report["status"] == "passed"
    assert report["summary"] == {"files": 1, "rules": 11, "passed": 11, "failed": 0, "warnings": 0, "skipped": 0}
    assert junit_counts(out_dir / "data-check.junit.xml") == {
        "tests": 11, "failures": 0, "skipped": 0, "declared_tests": 11, "declared_failures": 0}
    assert (out_dir / "data-check.md").read_text().startswith("### ✅ Data check passed")
    assert "data check PASSED" in out


def test_error_failures_exit_1_and_are_reported_everywhere(project, run_cli):
    write(_bad_frame(), project / "data.parquet")
    (project / "contract.yml").write_text(CONTRACT)
    code, out, err = run_cli("data", "check", "data.parquet", "--contract", "contract.yml")
    assert code == 1
    assert "1 error-severity data rule(s) failed" in err
    out_dir = project / "mlci-out"

    counts = junit_counts(out_dir / "data-check.junit.xml")
    assert counts == {"tests": 11, "failures": 2, "skipped": 0, "declared_tests": 11, "declared_failures": 2}
    import xml.etree.ElementTree as ET

    failures = {c.get("name"): c.find("failure") for c in ET.parse(out_dir / "data-check.junit.xml").iter("testcase")
                if c.find("failure") is not None}
    assert failures["amount: min >= 0"].get("message") == "2 rows (2.00%)"
    assert "row 7: -1" in failures["amount: min >= 0"].text
    assert failures["code: matches AB-\\d{3}"].get("message").startswith("[warn] 1 row")

    report = read_json(out_dir / "data-check.json")
    assert report["status"] == "failed"
    assert report["summary"]["failed"] == 1 and report["summary"]["warnings"] == 1
    rule = next(r for r in report["files"][0]["rules"] if r["name"] == "amount: min >= 0")
    assert rule["failing_rows"] == 2
    assert rule["failing_fraction"] == 0.02
    assert rule["examples"] == [{"row": 7, "value": "-1"}, {"row": 8, "value": "-1"}]

    markdown = (out_dir / "data-check.md").read_text()
    assert markdown.startswith("### ❌ Data check failed")
    assert "| ❌ | `data.parquet` | `amount: min >= 0` | error | 2 rows (2.00%) | `row 7: -1; row 8: -1` |" in markdown
    assert "| ⚠️ | `data.parquet` | `code: matches AB-\\d{3}` | warn |" in markdown

    assert "FAIL  amount: min >= 0" in out
    assert "WARN  code: matches" in out
    assert len(out.splitlines()) < 25  # one screen


def test_warn_only_rules_do_not_fail_the_job(project, run_cli):
    frame = base_frame().with_columns(pl.lit("zz").alias("code"))
    write(frame, project / "data.parquet")
    (project / "contract.yml").write_text(CONTRACT)
    code, _, err = run_cli("data", "check", "data.parquet", "--contract", "contract.yml")
    assert code == 0, err
    assert read_json(project / "mlci-out" / "data-check.json")["summary"]["warnings"] == 1


def test_warn_only_flag_reports_errors_but_exits_0(project, run_cli):
    write(_bad_frame(), project / "data.parquet")
    (project / "contract.yml").write_text(CONTRACT)
    code, _, _ = run_cli("data", "check", "data.parquet", "--contract", "contract.yml", "--warn-only")
    assert code == 0
    assert read_json(project / "mlci-out" / "data-check.json")["status"] == "failed"


def test_missing_data_file_exits_2_with_its_path(project, run_cli):
    (project / "contract.yml").write_text(CONTRACT)
    code, _, err = run_cli("data", "check", "data/missing.parquet", "--contract", "contract.yml")
    assert code == 2
    assert "data/missing.parquet: data file not found" in err


def test_glob_matching_nothing_exits_2(project, run_cli):
    (project / "contract.yml").write_text(CONTRACT)
    code, _, err = run_cli("data", "check", "data/*.parquet", "--contract", "contract.yml")
    assert code == 2
    assert "no data file matches 'data/*.parquet'" in err


def test_unreadable_data_file_exits_2_with_its_path(project, run_cli):
    (project / "contract.yml").write_text(CONTRACT)
    (project / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    code, _, err = run_cli("data", "check", "broken.parquet", "--contract", "contract.yml")
    assert code == 2
    assert "broken.parquet: cannot read as parquet:" in err


def test_unknown_extension_asks_for_a_format(project, run_cli):
    (project / "contract.yml").write_text(CONTRACT)
    write(base_frame(), project / "data.csv").rename(project / "data.txt")
    code, _, err = run_cli("data", "check", "data.txt", "--contract", "contract.yml")
    assert code == 2
    assert "cannot tell the format of data.txt" in err
    code, _, err = run_cli("data", "check", "data.txt", "--contract", "contract.yml", "--format", "csv")
    assert code == 0, err


def test_glob_checks_each_file_on_its_own(project, run_cli):
    write(base_frame(), project / "parts" / "a.parquet")
    write(_bad_frame(), project / "parts" / "b.parquet")
    (project / "contract.yml").write_text(CONTRACT)
    code, _, _ = run_cli("data", "check", "parts/*.parquet", "--contract", "contract.yml")
    assert code == 1
    report = read_json(project / "mlci-out" / "data-check.json")
    assert [(f["path"], f["rows"]) for f in report["files"]] == [("parts/a.parquet", 100), ("parts/b.parquet", 100)]
    assert junit_counts(project / "mlci-out" / "data-check.junit.xml")["tests"] == 22


def test_sources_from_mlci_yml_inline_and_in_a_file(project, run_cli):
    write(base_frame(), project / "data" / "train.parquet")
    write(_bad_frame(), project / "data" / "batch.csv")
    (project / "contracts").mkdir()
    (project / "contracts" / "batch.yml").write_text(CONTRACT)
    (project / "mlci.yml").write_text(textwrap.dedent("""\
        data:
          sources:
            train:
              path: data/train.parquet
              contract:
                columns:
                  id: {dtype: int64, not-null: true}
            batch:
              path: data/*.csv
              contract: contracts/batch.yml
        """))
    code, _out, err = run_cli("data", "check")
    assert code == 1, err
    report = read_json(project / "mlci-out" / "data-check.json")
    assert [(f["source"], f["path"]) for f in report["files"]] == [("train", "data/train.parquet"),
                                                                   ("batch", "data/batch.csv")]
    assert [f["status"] for f in report["files"][0]["rules"]] == ["passed"] * 3

    # A path on the command line is checked against the source whose glob matches it.
    code, _, _ = run_cli("data", "check", "data/batch.csv")
    assert code == 1
    report = read_json(project / "mlci-out" / "data-check.json")
    assert [f["source"] for f in report["files"]] == ["batch"]


def test_a_configured_source_whose_file_is_missing_exits_2(project, run_cli):
    (project / "mlci.yml").write_text(textwrap.dedent("""\
        data:
          sources:
            train:
              path: data/train.parquet
              contract: {columns: {id: {dtype: int64}}}
        """))
    code, _, err = run_cli("data", "check")
    assert code == 2
    assert "mlci.yml:4:13: data file not found (source 'train': data/train.parquet)" in err


def test_nothing_to_check_is_a_usage_error(project, run_cli):
    code, _, err = run_cli("data", "check")
    assert code == 2
    assert "nothing to check" in err


def test_contract_flag_may_be_empty_as_the_template_passes_it(project, run_cli):
    write(base_frame(), project / "data" / "train.parquet")
    (project / "mlci.yml").write_text(textwrap.dedent("""\
        data:
          sources:
            train: {path: data/train.parquet, contract: {columns: {id: {dtype: int64}}}}
        """))
    code, _, err = run_cli("data", "check", "--contract", "")
    assert code == 0, err


def test_data_check_imports_neither_mlflow_nor_matplotlib(project):
    """Startup cost: `data check` must not pay for libraries it does not use."""
    write(base_frame(), project / "data.parquet")
    (project / "contract.yml").write_text(CONTRACT)
    probe = (
        "import sys\n"
        "from mlci.cli import main\n"
        "code = main(['-q', 'data', 'check', 'data.parquet', '--contract', 'contract.yml'])\n"
        "heavy = sorted(m for m in ('mlflow', 'matplotlib', 'scipy', 'sklearn', 'gitlab', 'pandas', 'jsonschema') "
        "if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "0 []", done.stderr


def test_data_without_a_subcommand_is_a_usage_error(project, run_cli):
    code, _, err = run_cli("data")
    assert code == 2
    assert "choose a subcommand: mlci data check | mlci data drift" in err
