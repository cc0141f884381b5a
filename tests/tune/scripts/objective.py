"""A training script stand-in for tuning tests.

The loss is (x - 2)^2 (+1 for kind=b); it is logged as metric `loss` on the
run mlci opened. To stay fast on a busy machine it writes the metric straight
into the sqlite MLflow store instead of importing mlflow (seconds per trial).

OBJ_STEPS / OBJ_STEP_SECONDS: report that many intermediate values, one per
step (the loss plus a decreasing margin), through mlci.tune.report, or through
the file protocol when OBJ_PROTOCOL=file. OBJ_HANG=1: hang before logging
(to be killed). OBJ_FAIL_ABOVE: exit 1 when x is above it.
"""

import os
import sqlite3
import sys
import time

x = float(os.environ.get("MLCI_PARAM_X", "0"))
kind = os.environ.get("MLCI_PARAM_KIND", "a")
loss = (x - 2) ** 2 + (1.0 if kind == "b" else 0.0)
steps = int(os.environ.get("OBJ_STEPS", "0"))
step_seconds = float(os.environ.get("OBJ_STEP_SECONDS", "0"))

if os.environ.get("OBJ_FAIL_ABOVE") and x > float(os.environ["OBJ_FAIL_ABOVE"]):
    print("diverged", flush=True)
    sys.exit(1)

for step in range(steps):
    value = loss + (steps - step)
    if os.environ.get("OBJ_PROTOCOL") == "file":
        with open(os.environ["MLCI_TUNE_REPORT_FILE"], "a") as report:
            report.write(f"{step} {value}\n")
    else:
        import mlci.tune

        mlci.tune.report(step, value)
    print(f"step {step} value {value}", flush=True)
    time.sleep(step_seconds)

if os.environ.get("OBJ_HANG"):
    print("hanging", flush=True)
    time.sleep(3600)

uri = os.environ["MLFLOW_TRACKING_URI"]
path = uri[len("sqlite:///"):]
run_id = os.environ["MLFLOW_RUN_ID"]
now = int(time.time() * 1000)
with sqlite3.connect(path, timeout=60) as db:
    db.execute("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES ('loss', ?, ?, ?, 0, 0)",
               (loss, now, run_id))
    db.execute("INSERT OR REPLACE INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
               "VALUES ('loss', ?, ?, 0, 0, ?)", (loss, now, run_id))
print(f"loss {loss}", flush=True)
