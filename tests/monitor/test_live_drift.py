"""Live drift: logged requests against the training reference, judged by `mlci data drift`'s engine."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tests.monitor.conftest import EXAMPLE
from tests.monitor.test_monitor_command import registry_with_production

CONFIG = """\
model: {{name: tumor}}
mlflow: {{tracking-uri: "{uri}"}}
deploy: {{environments: [{{name: production}}]}}
monitor:
  drift:
    logs: [logs/*.ndjson]
    reference: reference.parquet
    exclude: [sample_id, collected_at]
    prediction-column: prediction
    target-column: target
    min-rows: 100
"""


@pytest.fixture
def project(tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    shutil.copyfile(EXAMPLE / "data" / "reference.parquet", tmp_path / "reference.parquet")
    (tmp_path / "mlci.yml").write_text(CONFIG.format(uri=registry_with_production(tmp_path)))
    return tmp_path


def write_log(root, frame: pd.DataFrame, predictions) -> None:
    (root / "logs").mkdir(exist_ok=True)
    features = frame.drop(columns=["sample_id", "site", "collected_at", "target"])
    with open(root / "logs" / "requests.ndjson", "w") as log:
        for record, prediction in zip(features.to_dict(orient="records"), predictions, strict=True):
            log.write(json.dumps({**record, "prediction": prediction}) + "\n")


def reference() -> pd.DataFrame:
    return pd.read_parquet(EXAMPLE / "data" / "reference.parquet")


def verdict(project) -> dict:
    return json.loads((project / "mlci-out" / "monitor-production.json").read_text())


def test_requests_like_the_training_data_are_ok(project, run_cli):
    sample = reference().sample(300, random_state=4)
    write_log(project, sample, sample["target"].tolist())
    code, out, err = run_cli("monitor", "--env", "production", "--dry-run")
    assert code == 0, err
    report = verdict(project)
    assert report["decision"] == "ok" and report["drift"]["status"] == "ok"
    assert "site" not in report["drift"]["details"], "a column the model is never sent is not compared"
    assert "prediction" in report["drift"]["details"]
    assert "decision: ok" in out


def test_shifted_features_mean_retrain(project, run_cli):
    sample = reference().sample(300, random_state=5)
    sample["mean_area"] = sample["mean_area"] * 1.6
    write_log(project, sample, sample["target"].tolist())
    code, _, err = run_cli("monitor", "--env", "production", "--dry-run")
    assert code == 1 and "monitor decided retrain" in err
    report = verdict(project)
    assert report["decision"] == "retrain" and "mean_area" in report["drift"]["columns"]
    assert "retrain" not in report["actions"], "--dry-run takes no action"
    junit = (project / "mlci-out" / "monitor-production.junit.xml").read_text()
    assert "live data drift" in junit and "<failure" in junit


def test_a_model_that_answers_differently_is_drift_too(project, run_cli):
    sample = reference().sample(300, random_state=6)
    write_log(project, sample, [1] * len(sample))
    run_cli("monitor", "--env", "production", "--dry-run")
    assert verdict(project)["drift"]["columns"] == ["prediction"]


def test_too_few_or_no_logged_requests_is_no_data(project, run_cli):
    code, _, err = run_cli("monitor", "--env", "production", "--dry-run")
    assert code == 1 and verdict(project)["decision"] == "no-data"
    assert "no logged requests match" in err
    sample = reference().sample(20, random_state=7)
    write_log(project, sample, sample["target"].tolist())
    code, _, err = run_cli("monitor", "--env", "production", "--dry-run")
    assert code == 1 and verdict(project)["decision"] == "no-data"
    assert "fewer than monitor.drift.min-rows" in err
    assert "MLCI_MONITOR_DECISION=no-data" in (project / "mlci-out" / "monitor-production.env").read_text()
