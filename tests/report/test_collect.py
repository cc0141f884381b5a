"""Gathering report inputs from a real sqlite MLflow store and the out dir."""

from __future__ import annotations

import json

import pytest

from mlci.adapters.ci_env import CiEnv
from mlci.config import load_effective
from mlci.errors import ConfigError, ExternalServiceError
from mlci.report import collect, compose
from tests.report import scenarios
from tests.report.conftest import MODEL


def config_for(tmp_path, store, **report):
    lines = ["model:", f"  name: {MODEL}", "mlflow:", f"  tracking-uri: '{store.uri}'", "  registry-mode: alias"]
    if report:
        lines.append("report:")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in report.items()]
    path = tmp_path / "mlci.yml"
    path.write_text("\n".join(lines) + "\n")
    return load_effective(path, env={})


MR = CiEnv(mr_iid="17", mr_target_branch="main", mr_source_branch="feature/deeper-trees")


def test_gather_finds_champion_target_history_and_predictions(tmp_path, report_store):
    config = config_for(tmp_path, report_store, **{"history-runs": 3})
    out = tmp_path / "out"
    got = collect.gather(config, {"MLCI_RUN_ID": report_store.candidate_run}, MR, out)
    assert got.candidate.run_id == report_store.candidate_run
    assert got.champion.run_id == report_store.champion_run
    assert got.champion_version == report_store.champion_version
    # The newest FINISHED main run; the later FAILED one is ignored.
    assert got.target.run_id == report_store.main_runs[-1]
    assert [r.run_id for r in got.history] == report_store.main_runs[-3:]
    y_true, y_pred = got.predictions
    assert len(y_true) == 60 and set(y_pred) == {0, 1}
    assert got.warnings == []


def test_compose_plans_history_and_confusion_plots(tmp_path, report_store):
    config = config_for(tmp_path, report_store, **{"history-metrics": ["acc*"]})
    got = collect.gather(config, {"MLCI_RUN_ID": report_store.candidate_run}, MR, tmp_path / "out")
    composed = compose.compose(got, config, MR, {})
    assert [s.name for s in composed.plots] == ["history-accuracy.png", "confusion-matrix.png"]
    history = composed.plots[0].data
    assert [v for _, v in history.runs] == pytest.approx([0.86, 0.87, 0.88, 0.89])
    assert history.candidate == 0.91 and history.champion == pytest.approx(0.87)
    rows = {r.name: r for r in composed.model.metrics}
    assert "system/cpu_utilization_percentage" not in rows
    assert rows["val_loss"].vs_champion.verdict == "better"


def test_history_plots_default_to_the_metrics_the_gate_checks(tmp_path, report_store):
    config = config_for(tmp_path, report_store, **{"max-history-plots": 1})
    got = collect.gather(config, {"MLCI_RUN_ID": report_store.candidate_run}, MR, tmp_path / "out")
    assert [s.name for s in compose.compose(got, config, MR, {}).plots if s.kind == "history"] == [
        "history-accuracy.png"  # alphabetical first without a gate
    ]
    got.artifacts["gate"] = scenarios.gate("passed", [scenarios.verdict("val_loss <= 0.5", "passed")])
    assert [s.name for s in compose.compose(got, config, MR, {}).plots if s.kind == "history"] == [
        "history-val_loss.png"
    ]


def test_without_a_run_id_mlflow_is_not_contacted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./mlci.yml of the repo
    config = load_effective(None, env={"MLCI_MODEL_NAME": "churn",
                                       "MLFLOW_TRACKING_URI": "http://127.0.0.1:9/unreachable"})
    got = collect.gather(config, {}, MR, tmp_path)
    assert got.candidate is None and got.champion is None


def test_a_branch_without_history_and_a_run_without_predictions_leave_parts_out(tmp_path, report_store):
    config = config_for(tmp_path, report_store)
    ci = CiEnv(mr_iid="3", mr_target_branch="release/it's")  # a quote in the branch name is searchable too
    got = collect.gather(config, {"MLCI_RUN_ID": report_store.plain_run}, ci, tmp_path)
    assert got.target is None and got.history == [] and got.predictions is None
    composed = compose.compose(got, config, ci, {})
    assert composed.plots == []
    assert any("No finished run on the target branch release/it's" in n for n in composed.model.notes)


def test_unreadable_artifacts_are_skipped_with_a_warning(tmp_path):
    (tmp_path / "gate.json").write_text("{not json")
    (tmp_path / "drift.json").write_text("[1, 2]")
    (tmp_path / "data-check.json").write_text(json.dumps({"version": 1, "status": "passed"}))
    found, warnings = collect.read_artifacts(tmp_path)
    assert list(found) == ["data_check"]
    assert len(warnings) == 2 and "gate.json" in warnings[0] and "drift.json" in warnings[1]


def test_candidate_run_precedence():
    artifacts = {"gate": {"run_id": "from-gate"}, "train": {"run_id": "from-train"}}
    assert collect.candidate_run_id("flag", {"MLCI_RUN_ID": "env"}, artifacts) == "flag"
    assert collect.candidate_run_id(None, {"MLCI_RUN_ID": "env"}, artifacts) == "env"
    assert collect.candidate_run_id(None, {}, artifacts) == "from-gate"
    assert collect.candidate_run_id(None, {}, {"train": {"run_id": "from-train"}}) == "from-train"
    assert collect.candidate_run_id(None, {}, {}) == ""


def test_unknown_run_is_an_mlflow_error_naming_the_store(tmp_path, report_store):
    config = config_for(tmp_path, report_store)
    with pytest.raises(ExternalServiceError) as info:
        collect.gather(config, {"MLCI_RUN_ID": "0" * 32}, MR, tmp_path)
    assert info.value.exit_code == 3
    assert "MLflow" in info.value.message and "mlflow.db" in info.value.message


def test_predictions_without_the_convention_columns_warn_and_skip(tmp_path):
    bad = tmp_path / "predictions.csv"
    bad.write_text("label,score\n1,0.5\n")
    with pytest.raises(ConfigError, match="y_true and y_pred"):
        collect.read_predictions(bad)


def test_the_champion_is_whatever_marker_the_gate_compares_against(tmp_path, report_store):
    path = tmp_path / "mlci.yml"
    path.write_text(f"model:\n  name: {MODEL}\nmlflow:\n  tracking-uri: '{report_store.uri}'\n"
                    "gate:\n  champion-marker: production\n")
    config = load_effective(path, env={})
    got = collect.gather(config, {"MLCI_RUN_ID": report_store.candidate_run}, MR, tmp_path / "out")
    assert got.champion is None  # nobody holds `production` on this model; `champion` is not used


def test_a_refusing_mlflow_reads_like_the_registrys_errors_without_credentials():
    """The report's run reader shares the registry adapter's MLflow error translation."""
    from mlflow.exceptions import RestException

    class RefusingClient:
        def get_run(self, run_id):
            raise RestException({"error_code": "UNAUTHENTICATED",
                                 "message": "GET https://bot:s3cret@gitlab.example.com/api/v4/projects/7/ml/mlflow"})

    reader = collect.TrackingReader("https://bot:s3cret@gitlab.example.com/api/v4/projects/7/ml/mlflow",
                                    client=RefusingClient())
    with pytest.raises(ExternalServiceError) as info:
        reader.run("abc123")
    assert info.value.exit_code == 3 and info.value.status == 401
    assert "could not read run abc123" in info.value.message and "s3cret" not in info.value.message
    assert "project access token" in info.value.hint, "GitLab's MLflow endpoint gets GitLab's hint"

    class Broken:
        def get_run(self, run_id):
            raise KeyError("a bug, not a service failure")

    with pytest.raises(KeyError):
        collect.TrackingReader("sqlite:///x.db", client=Broken()).run("abc123")
