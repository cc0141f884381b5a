"""A real sqlite MLflow store with a target-branch history, a champion and a candidate (once per worker)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODEL = "churn"
CARD_MODEL = "churn-card"
BASE_MS = 1_760_000_000_000


@dataclass
class ReportStore:
    uri: str
    root: Path
    experiment_id: str
    main_runs: list[str] = field(default_factory=list)  # FINISHED runs on main, oldest first
    failed_main_run: str = ""
    champion_run: str = ""
    champion_version: str = ""
    candidate_run: str = ""
    plain_run: str = ""  # a run without predictions, on a branch with no history
    card_version: str = ""
    card_run: str = ""


def _run(client, experiment_id: str, *, start: int, ref: str, metrics: dict, params: dict, status="FINISHED",
         commit: str = "", name: str = ""):
    from mlflow.entities import Metric, Param

    tags = {"mlci.gitlab.ref": ref, "mlci.gitlab.commit": commit or hashlib.sha1(str(start).encode()).hexdigest()}
    run = client.create_run(experiment_id, start_time=BASE_MS + start, tags=tags, run_name=name or None)
    run_id = run.info.run_id
    # One batch per run: each separate write is a sqlite transaction, and they add up.
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, BASE_MS + start, 0) for key, value in metrics.items()],
        params=[Param(key, value) for key, value in params.items()],
    )
    client.set_terminated(run_id, status=status, end_time=BASE_MS + start + 1000)
    return run_id


def build_store(root: Path) -> ReportStore:
    from mlflow import MlflowClient
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from mlci.adapters.ci_env import CiEnv
    from mlci.adapters.mlflow import Registry

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("ml-group/churn-model", artifact_location=(root / "artifacts").as_uri())
    store = ReportStore(uri=uri, root=root, experiment_id=experiment_id)
    for i in range(4):
        store.main_runs.append(_run(
            client, experiment_id, start=i * 60_000, ref="main", name=f"main-{i}",
            metrics={"accuracy": 0.86 + i / 100, "val_loss": 0.40 - i / 50},
            params={"max_depth": "6", "n_estimators": str(100 + 50 * i)},
        ))
    store.failed_main_run = _run(client, experiment_id, start=5 * 60_000, ref="main", status="FAILED",
                                 metrics={"accuracy": 0.1}, params={"max_depth": "1"})
    store.champion_run = store.main_runs[1]
    registry = Registry(uri, mode="alias", ci=CiEnv(user_login="alice", pipeline_id="700"))
    client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, f"runs:/{store.champion_run}/model", run_id=store.champion_run)
    store.champion_version = str(version.version)
    registry.move_marker(MODEL, "champion", store.champion_version, reason="first production model")

    store.candidate_run = _run(
        client, experiment_id, start=10 * 60_000, ref="feature/deeper-trees", name="bright-owl",
        metrics={"accuracy": 0.91, "val_loss": 0.30, "system/cpu_utilization_percentage": 90.0},
        params={"max_depth": "8", "n_estimators": "250"},
    )
    predictions = root / "predictions.csv"
    predictions.write_text("y_true,y_pred\n" + "".join(f"{i % 2},{(i // 3) % 2}\n" for i in range(60)))
    client.log_artifact(store.candidate_run, str(predictions))
    store.plain_run = _run(client, experiment_id, start=11 * 60_000, ref="spike", metrics={"accuracy": 0.5},
                           params={})

    # The model card's version: lineage tags, a dataset input, gate tags and an audit trail.
    store.card_run = _run(
        client, experiment_id, start=12 * 60_000, ref="release/1.0", name="card-run", commit="ab" * 20,
        metrics={"accuracy": 0.93, "val_loss": 0.2, "system/gpu_0_utilization_percentage": 5.0},
        params={"max_depth": "8"},
    )
    for key, value in {
        "mlci.data.train.sha256": "9f" * 32,
        "mlci.data.train.size_bytes": "1048576",
        "mlci.data.train.rows": "5000",
        "mlci.data.train.path": "data/train.parquet",
        "mlci.gitlab.pipeline_id": "881",
        "mlci.gitlab.pipeline_url": "https://gitlab.example.com/ml/churn/-/pipelines/881",
    }.items():
        client.set_tag(store.card_run, key, value)
    client.log_inputs(store.card_run, datasets=[DatasetInput(
        Dataset(name="reference", digest="d1e2f3", source_type="local",
                source=json.dumps({"uri": "data/reference.parquet"}), profile=json.dumps({"num_rows": 1200})),
        tags=[InputTag("mlflow.data.context", "evaluation")],
    )])
    client.create_registered_model(CARD_MODEL)
    card = client.create_model_version(
        CARD_MODEL, f"runs:/{store.card_run}/model", run_id=store.card_run,
        tags={"mlci.validated": "true", "mlci.gate.status": "passed", "mlci.gate.rules": "3 passed"},
    )
    store.card_version = str(card.version)
    deployer = Registry(uri, mode="alias", ci=CiEnv(user_login="bob", pipeline_id="900",
                                                     pipeline_url="https://gitlab.example.com/p/900",
                                                     environment_name="production"))
    registry.move_marker(CARD_MODEL, "staging", store.card_version, reason="gate passed")
    deployer.move_marker(CARD_MODEL, "production", store.card_version, reason="approved in !17 <b>@all</b>")
    return store


@pytest.fixture(scope="session")
def report_store(tmp_path_factory) -> ReportStore:
    return build_store(tmp_path_factory.mktemp("report-mlflow"))
