"""`mlci data drift` end to end: exit codes, drift.env, reports and plots."""

from __future__ import annotations

import textwrap

import polars as pl

from mlci.outputs.dotenv import read_dotenv
from tests.data.conftest import junit_counts, read_json, write
from tests.data.test_drift import N, reference_frame

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _files(project):
    reference = write(reference_frame(), project / "data" / "reference.parquet")
    same = write(reference_frame().sample(n=N, with_replacement=True, seed=4), project / "data" / "resample.parquet")
    shifted = write(reference_frame(seed=2).with_columns(pl.col("score") + 0.6), project / "data" / "shifted.csv")
    return reference, same, shifted


def test_no_drift_on_a_resample(project, run_cli):
    _files(project)
    code, out, err = run_cli("data", "drift", "--reference", "data/reference.parquet", "data/resample.parquet")
    assert code == 0, err
    out_dir = project / "mlci-out"
    assert read_dotenv(out_dir / "drift.env") == {"MLCI_DRIFT": "false"}
    report = read_json(out_dir / "drift.json")
    assert report["version"] == 1 and report["drift"] is False and report["drifting_columns"] == []
    assert junit_counts(out_dir / "drift.junit.xml")["failures"] == 0
    assert not (out_dir / "drift-plots").exists()
    assert (out_dir / "drift.md").read_text().startswith("### ✅ No drift")
    assert "MLCI_DRIFT=false" in out


def test_drift_is_reported_but_exits_0(project, run_cli):
    _files(project)
    code, out, err = run_cli("data", "drift", "--reference", "data/reference.parquet", "data/shifted.csv")
    assert code == 0, err
    out_dir = project / "mlci-out"
    assert read_dotenv(out_dir / "drift.env") == {"MLCI_DRIFT": "true"}
    report = read_json(out_dir / "drift.json")
    assert report["drifting_columns"] == ["score"]
    score = next(c for c in report["datasets"][0]["columns"] if c["column"] == "score")
    assert score["psi"] > 0.2 and score["ks_pvalue"] < 1e-6
    assert score["plot"] == "drift-plots/score.png"
    assert score["bins"]["labels"][0].startswith("<= ")
    assert sorted(p.name for p in (out_dir / "drift-plots").iterdir()) == ["score.png"]
    assert (out_dir / "drift-plots" / "score.png").read_bytes().startswith(PNG_MAGIC)
    counts = junit_counts(out_dir / "drift.junit.xml")
    assert counts["tests"] == 5 and counts["failures"] == 1
    markdown = (out_dir / "drift.md").read_text()
    assert markdown.startswith("### ⚠️ Drift in 1 column(s): `score`")
    assert "DRIFT  score" in out


def test_fail_on_drift_exits_1(project, run_cli):
    _files(project)
    code, _, err = run_cli("data", "drift", "--reference", "data/reference.parquet", "data/shifted.csv",
                           "--fail-on-drift")
    assert code == 1
    assert "drift in score (--fail-on-drift)" in err
    assert read_dotenv(project / "mlci-out" / "drift.env") == {"MLCI_DRIFT": "true"}
    code, _, _ = run_cli("data", "drift", "--reference", "data/reference.parquet", "data/resample.parquet",
                         "--fail-on-drift")
    assert code == 0


def test_settings_from_mlci_yml(project, run_cli):
    _files(project)
    (project / "mlci.yml").write_text(textwrap.dedent("""\
        data:
          drift:
            reference: data/reference.parquet
            current: [data/shifted.csv]
            exclude: [active]
            column-thresholds:
              score: {psi: 100, ks-statistic: 0.99}
            fail-on-drift: true
        """))
    code, _, err = run_cli("data", "drift")
    assert code == 0, err  # score's own thresholds tolerate the shift
    report = read_json(project / "mlci-out" / "drift.json")
    assert [c["column"] for c in report["datasets"][0]["columns"]] == ["income", "age", "score", "segment"]

    code, _, _ = run_cli("--set", "data.drift.thresholds.psi=0.0001", "data", "drift", "--columns", "income")
    assert code == 1  # a tiny PSI threshold flags sampling noise, and fail-on-drift comes from mlci.yml


def test_reference_from_the_environment(project, run_cli, monkeypatch):
    _files(project)
    monkeypatch.setenv("MLCI_DATA_DRIFT_REFERENCE", "data/reference.parquet")
    code, _, err = run_cli("data", "drift", "data/resample.parquet")
    assert code == 0, err
    assert read_json(project / "mlci-out" / "drift.json")["reference"]["label"] == "data/reference.parquet"


def test_several_current_datasets_get_one_suite_each(project, run_cli):
    _files(project)
    code, _, err = run_cli("data", "drift", "--reference", "data/reference.parquet", "data/resample.parquet",
                           "data/shifted.csv")
    assert code == 0, err
    report = read_json(project / "mlci-out" / "drift.json")
    assert [d["drift"] for d in report["datasets"]] == [False, True]
    assert junit_counts(project / "mlci-out" / "drift.junit.xml")["tests"] == 10
    assert [p.name for p in (project / "mlci-out" / "drift-plots").iterdir()] == ["shifted--score.png"]


def test_plot_names_cannot_escape_the_plot_folder(project, run_cli):
    reference = pl.DataFrame({"../../evil name": reference_frame()["score"]})
    write(reference, project / "ref.parquet")
    write(reference.with_columns(pl.all() + 1), project / "cur.parquet")
    code, _, err = run_cli("data", "drift", "--reference", "ref.parquet", "cur.parquet")
    assert code == 0, err
    assert [p.name for p in (project / "mlci-out" / "drift-plots").iterdir()] == ["evil_name.png"]


def test_missing_reference_is_a_usage_error(project, run_cli):
    _files(project)
    code, _, err = run_cli("data", "drift", "data/shifted.csv")
    assert code == 2
    assert "no reference data" in err
    code, _, err = run_cli("data", "drift", "--reference", "data/nope.parquet", "data/shifted.csv")
    assert code == 2
    assert "data/nope.parquet: data file not found" in err
