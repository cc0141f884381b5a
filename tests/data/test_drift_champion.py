"""`--reference champion` against a real sqlite MLflow store.

The store is built with plain MLflow calls, the way `mlci train` and `mlci
deploy` leave it: a run with the training data logged under mlci-data/, a
registered version of it, and the `champion` alias on that version.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from mlci.outputs.dotenv import read_dotenv
from tests.data.conftest import read_json, write
from tests.data.test_drift import N, reference_frame


@dataclass
class Store:
    uri: str
    with_snapshot: str  # model whose champion run logged data/train.parquet
    without_snapshot: str  # model whose champion run logged no data
    no_champion: str  # model with a version but no champion


@pytest.fixture(scope="session")
def champion_store(tmp_path_factory) -> Store:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-champion")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("training", artifact_location=(root / "artifacts").as_uri())
    training_data = write(reference_frame(), root / "data" / "train.parquet")

    def version(model: str, *, log_data: bool, champion: bool = True) -> None:
        run = client.create_run(experiment)
        if log_data:
            client.log_artifact(run.info.run_id, str(training_data), "mlci-data/data")
        client.set_terminated(run.info.run_id)
        client.create_registered_model(model)
        mv = client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        if champion:
            client.set_registered_model_alias(model, "champion", mv.version)

    version("churn", log_data=True)
    version("bare", log_data=False)
    version("fresh", log_data=True, champion=False)
    return Store(uri=uri, with_snapshot="churn", without_snapshot="bare", no_champion="fresh")


def _project(project: Path, store: Store, model: str) -> None:
    (project / "mlci.yml").write_text(textwrap.dedent(f"""\
        model: {{name: {model}}}
        mlflow: {{tracking-uri: "{store.uri}"}}
        data:
          drift: {{reference: champion}}
        """))


@pytest.fixture
def no_mlflow_env(monkeypatch):
    # The adapter sets MLflow's process-wide URI for one call; keep tests from seeing each other's.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_champion_snapshot_is_the_reference(project, run_cli, champion_store, no_mlflow_env):
    _project(project, champion_store, champion_store.with_snapshot)
    write(reference_frame(seed=2).with_columns(pl.col("income") * 1.5), project / "data" / "train.parquet")
    code, out, err = run_cli("data", "drift", "data/train.parquet")
    assert code == 0, err
    report = read_json(project / "mlci-out" / "drift.json")
    assert report["reference"]["available"] is True
    assert report["reference"]["label"].startswith("champion churn v1 (run ")
    dataset = report["datasets"][0]
    assert dataset["reference_rows"] == N
    assert report["drifting_columns"] == ["income"]
    assert read_dotenv(project / "mlci-out" / "drift.env") == {"MLCI_DRIFT": "true"}
    assert "reference: champion churn v1" in out


def test_a_resample_of_the_champion_data_shows_no_drift(project, run_cli, champion_store, no_mlflow_env):
    _project(project, champion_store, champion_store.with_snapshot)
    # A differently named file still pairs with the snapshot's only data file.
    write(reference_frame().sample(n=N, with_replacement=True, seed=9), project / "new" / "batch.parquet")
    code, _, err = run_cli("data", "drift", "--reference", "champion", "new/batch.parquet")
    assert code == 0, err
    assert read_dotenv(project / "mlci-out" / "drift.env") == {"MLCI_DRIFT": "false"}


@pytest.mark.parametrize(
    ("model_attr", "reason"),
    [("no_champion", "has no champion yet"), ("without_snapshot", "has no mlci-data/ snapshot")],
)
def test_no_reference_available_is_not_drift(project, run_cli, champion_store, no_mlflow_env, model_attr, reason):
    _project(project, champion_store, getattr(champion_store, model_attr))
    write(reference_frame(), project / "data" / "train.parquet")
    code, _, err = run_cli("data", "drift", "data/train.parquet", "--fail-on-drift")
    assert code == 0, err
    assert reason in err
    assert read_dotenv(project / "mlci-out" / "drift.env") == {"MLCI_DRIFT": "false"}
    report = read_json(project / "mlci-out" / "drift.json")
    assert report["reference"]["available"] is False and reason in report["reference"]["reason"]
    assert (project / "mlci-out" / "drift.md").read_text().startswith("### ⚪ Drift not measured")


def test_unreachable_tracking_server_exits_3(project, run_cli, no_mlflow_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    (project / "mlci.yml").write_text(textwrap.dedent("""\
        model: {name: churn}
        mlflow: {tracking-uri: "http://127.0.0.1:9"}
        """))
    write(reference_frame(), project / "data" / "train.parquet")
    code, _, err = run_cli("data", "drift", "--reference", "champion", "data/train.parquet")
    assert code == 3
    assert "MLflow http://127.0.0.1:9" in err
