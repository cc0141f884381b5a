"""Boosted trees through onnxmltools' converters: LightGBM and XGBoost estimators, logged with their own MLflow
flavour or inside a scikit-learn Pipeline, keep their answers as ONNX; a raw Booster is named, not guessed at."""

from __future__ import annotations

import pytest

from tests.optimize.conftest import EXAMPLE, NON_FEATURES, Project, Store

pytestmark = [pytest.mark.xdist_group("optimize")]


def _example_frame():
    import pandas as pd

    frame = pd.read_parquet(EXAMPLE / "data" / "patients.parquet")
    return frame.drop(columns=NON_FEATURES), frame["target"]


def _lightgbm_classifier(features, target):
    import mlflow.lightgbm
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(features, target)
    mlflow.lightgbm.log_model(model, name="model", input_example=features.head(3), pip_requirements=["lightgbm"])


def _xgboost_regressor(features, _target):
    import mlflow.xgboost
    from xgboost import XGBRegressor

    # Fitted on named columns: the converter reads trees by feature index, so mlci converts a copy.
    inputs = features.drop(columns="mean_smoothness")
    model = XGBRegressor(n_estimators=30, max_depth=3).fit(inputs, features["mean_smoothness"])
    mlflow.xgboost.log_model(model, name="model", input_example=inputs.head(3), pip_requirements=["xgboost"])


def _xgboost_in_a_pipeline(features, target):
    import mlflow.sklearn
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from xgboost import XGBClassifier

    # An imputer, not a scaler: a scaler computed in float32 moves borderline rows across a tree's split
    # (parity reports that as it should; docs/optimize.md says why).
    model = make_pipeline(SimpleImputer(), XGBClassifier(n_estimators=30, max_depth=3)).fit(features, target)
    mlflow.sklearn.log_model(model, name="model", input_example=features.head(3),
                             pip_requirements=["scikit-learn", "xgboost"],
                             skops_trusted_types=["xgboost.core.Booster", "xgboost.sklearn.XGBClassifier",
                                                  "numpy.dtype"])


def _store(tmp_path, run_cli, log_model, *, drop: list[str] | None = None) -> tuple[Project, str]:
    import mlflow

    from mlci.adapters.mlflow import tracking_uri_scope

    project = Project(tmp_path, Store(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", root=tmp_path), run_cli)
    features, target = _example_frame()
    with tracking_uri_scope(project.store.uri), mlflow.start_run() as run:
        log_model(features, target)
    optimize = {"rows": 200, "latency": {"repeats": 3, "warmup": 1, "batch-size": 20}}
    if drop:
        optimize["drop-columns"] = [*NON_FEATURES, *drop]
        optimize["sample"] = str(EXAMPLE / "data" / "reference.parquet")
    project.write_config(optimize=optimize)
    return project, run.info.run_id


@pytest.mark.parametrize(("log_model", "flavor", "model_class", "task", "drop"), [
    (_lightgbm_classifier, "lightgbm", "LGBMClassifier", "classification", None),
    (_xgboost_regressor, "xgboost", "XGBRegressor", "regression", ["mean_smoothness"]),
    (_xgboost_in_a_pipeline, "sklearn", "Pipeline", "classification", None),
], ids=["lightgbm flavour", "xgboost flavour", "xgboost in a sklearn pipeline"])
def test_boosted_trees_are_exported_with_onnxmltools_and_keep_their_answers(
        tmp_path, run_cli, clean_env, log_model, flavor, model_class, task, drop):
    clean_env.chdir(tmp_path)
    project, run_id = _store(tmp_path, run_cli, log_model, drop=drop)

    code, _, err = project.mlci("optimize", "--run", run_id)
    assert code == 0, err
    doc = project.json("optimize.json")
    assert doc["flavor"] == flavor and doc["model-class"] == model_class
    assert doc["exporter"].startswith("skl2onnx") and "onnxmltools" in doc["exporter"]
    assert doc["parity"]["task"] == task and doc["parity"]["status"] == "passed"
    checks = {c["name"]: c for c in doc["parity"]["checks"]}
    # The trees compare float32 thresholds, like the originals: the scores agree to float32 precision.
    assert checks["max-abs-diff"]["observed"] < 1e-5
    if task == "classification":
        assert checks["agreement"]["observed"] == 1.0
    assert doc["model-uri"].startswith("models:/")


def test_a_raw_booster_is_named_with_what_to_log_instead(tmp_path, run_cli, clean_env):
    import lightgbm

    clean_env.chdir(tmp_path)

    def log_booster(features, target):
        import mlflow.lightgbm

        booster = lightgbm.train({"objective": "binary", "verbose": -1, "num_leaves": 4},
                                 lightgbm.Dataset(features, target), num_boost_round=5)
        mlflow.lightgbm.log_model(booster, name="model", pip_requirements=["lightgbm"])

    project, run_id = _store(tmp_path, run_cli, log_booster)
    code, _, err = project.mlci("optimize", "--run", run_id)
    assert code == 1, err
    assert "the lightgbm model is a Booster" in err and "LGBMClassifier" in err
    assert "mlflow.lightgbm.log_model" in err
