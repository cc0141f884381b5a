"""Train the tumor classifier and log it to MLflow.

`mlci train` opens the run and passes MLFLOW_RUN_ID / MLFLOW_TRACKING_URI,
so everything logged here lands in the tracked run. Run it bare and it
creates its own run.

    python train.py [--data data/patients.parquet] [--C 1.0] [--variant good|worse]
"""

from __future__ import annotations

import argparse
import os
from importlib.metadata import version

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

NON_FEATURES = ["sample_id", "site", "collected_at", "target"]
# The "worse" variant sees one weak feature only: the gate must stop it.
WEAK_FEATURES = ["mean_fractal_dimension"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/patients.parquet")
    parser.add_argument("--C", type=float, default=float(os.environ.get("MLCI_PARAM_C", "1.0")))
    parser.add_argument("--variant", choices=["good", "worse"], default=os.environ.get("EXAMPLE_VARIANT", "good"))
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    frame = pd.read_parquet(args.data)
    features = WEAK_FEATURES if args.variant == "worse" else [c for c in frame.columns if c not in NON_FEATURES]
    train, test = train_test_split(frame, test_size=0.3, random_state=args.seed, stratify=frame["target"])

    # The worse variant is also heavily over-regularised: a plausible bad change.
    strength = 1e-4 if args.variant == "worse" else args.C
    model = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=2000))
    model.fit(train[features], train["target"])

    predicted = model.predict(test[features])
    probability = model.predict_proba(test[features])[:, 1]
    metrics = {
        "accuracy": accuracy_score(test["target"], predicted),
        "f1": f1_score(test["target"], predicted),
        "roc_auc": roc_auc_score(test["target"], probability),
        "log_loss": log_loss(test["target"], probability),
    }
    for site, part in test.groupby("site"):
        metrics[f"accuracy_slice_{site}"] = accuracy_score(part["target"], model.predict(part[features]))

    with mlflow.start_run():
        mlflow.log_params({"C": args.C, "variant": args.variant, "n_features": len(features)})
        mlflow.log_metrics(metrics)
        predictions = pd.DataFrame({"y_true": test["target"].to_numpy(), "y_pred": predicted})
        mlflow.log_text(predictions.to_csv(index=False), "predictions.csv")
        mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=train[features].head(3).astype(np.float64),
            # Pinned as the serving environment will install them. Without a list, MLflow infers one by
            # loading the model again in a subprocess, which takes longer than this whole training.
            pip_requirements=[
                *mlflow.sklearn.get_default_pip_requirements(include_skops=True),
                *(f"{package}=={version(package)}" for package in ("numpy", "pandas", "scipy")),
            ],
        )
    print("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))


if __name__ == "__main__":
    main()
