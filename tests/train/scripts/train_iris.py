"""A real, small training script: logistic regression on the iris CSV the test project declares.

It reads its params from MLCI_PARAMS_JSON, logs metrics and the model into the
run mlci opened (MLFLOW_RUN_ID), and prints as it goes.
"""

import csv
import json
import os

import mlflow
import mlflow.sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

params = json.loads(os.environ["MLCI_PARAMS_JSON"])
with open("data/iris.csv", newline="") as handle:
    rows = list(csv.DictReader(handle))
features = [[float(row[k]) for k in ("sepal_length", "sepal_width", "petal_length", "petal_width")] for row in rows]
labels = [int(row["species"]) for row in rows]
x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.3, random_state=0, stratify=labels)

with mlflow.start_run() as run:
    print(f"training in run {run.info.run_id} with C={params['C']}", flush=True)
    model = LogisticRegression(C=float(params["C"]), max_iter=int(params["max_iter"]))
    model.fit(x_train, y_train)
    predictions = model.predict(x_test)
    mlflow.log_metric("accuracy", accuracy_score(y_test, predictions))
    mlflow.log_metric("f1_macro", f1_score(y_test, predictions, average="macro"))
    # Explicit requirements: inferring them starts a second Python and doubles the run time.
    mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    print("done", flush=True)
