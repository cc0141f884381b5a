"""`make demo`: the example project's default-branch pipeline, end to end.

data check -> train -> gate -> deploy staging -> smoke test -> production
(manual, run here on purpose) -> a second model -> rollback to the first ->
the monitor's verdict on production, from the requests it was sent.
Everything runs under gitlab-ci-local in shell mode against a real MLflow
store, real `mlflow models serve` processes and the loopback GitLab fake.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

from tests.e2e.harness import REPO_ROOT, VENV_BIN, stop_model_servers, workspace_with_services
from tests.e2e.scenarios import MAIN_PUSH, served, set_training_default

DEMO_DIR = REPO_ROOT / ".demo"


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def check(run, label: str) -> None:
    if run.returncode != 0:
        print(run.output[-6000:])
        sys.exit(f"demo failed at: {label} (gitlab-ci-local exit {run.returncode})")
    print("    " + ", ".join(f"{job.name}: {job.status}" for job in run.jobs.values()))


def write_sample_request(root) -> str:
    """Two real rows of the reference data, as the scoring server's dataframe_split payload."""
    import pandas as pd

    frame = pd.read_parquet(root / "data" / "reference.parquet").head(2)
    features = frame.drop(columns=["sample_id", "site", "collected_at", "target"])
    path = root / "sample-request.json"
    payload = {"dataframe_split": {"columns": list(features.columns), "data": features.to_numpy().tolist()}}
    path.write_text(json.dumps(payload))
    return str(path)


def log_requests(root, url: str, rows: int = 300) -> None:
    """Send reference rows to the live server in batches and log features and answers, as a gateway would."""
    import pandas as pd
    import requests

    frame = pd.read_parquet(root / "data" / "reference.parquet").sample(rows, random_state=3)
    features = frame.drop(columns=["sample_id", "site", "collected_at", "target"])
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / "requests.ndjson", "w", encoding="utf-8") as log:
        for start in range(0, rows, 50):
            chunk = features.iloc[start:start + 50]
            payload = {"dataframe_split": {"columns": list(chunk.columns), "data": chunk.to_numpy().tolist()}}
            answer = requests.post(f"{url}/invocations", json=payload, timeout=30)
            answer.raise_for_status()
            for record, prediction in zip(chunk.to_dict(orient="records"), answer.json()["predictions"],
                                          strict=True):
                log.write(json.dumps({**record, "prediction": prediction}) + "\n")


def main() -> int:
    started = time.monotonic()
    if DEMO_DIR.exists():
        for old in DEMO_DIR.glob("mlci-e2e-*"):
            stop_model_servers(old)
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir()
    # The served models stay up after the demo so the curl below works.
    with workspace_with_services(DEMO_DIR, keep_model_servers=True) as ws:
        print(f"workspace: {ws.root}")

        step("1/5  default-branch pipeline: data check, train, gate, staging, smoke test, production (manual)")
        check(ws.run_pipeline("main-v1", MAIN_PUSH, manual=["mlci-deploy-production"]), "first pipeline")
        print(f"    production serves {served(ws, 'production')['process-model-uri']}")

        step("2/5  a code change trains a second model; the gate compares it with the champion")
        set_training_default(ws, c=0.3)
        ws.commit("Stronger regularisation")
        check(ws.run_pipeline("main-v2", MAIN_PUSH, manual=["mlci-deploy-production"]), "second pipeline")
        print(f"    production serves {served(ws, 'production')['process-model-uri']}")

        step("3/5  manual rollback of production to the previous version")
        rollback = ws.run_pipeline(
            "rollback", {**MAIN_PUSH, "MLCI_ROLLBACK_REASON": "demo rollback"},
            jobs=["mlci-rollback-production"], manual=["mlci-rollback-production"],
        )
        check(rollback, "rollback")
        production = served(ws, "production")
        print(f"    production serves {production['process-model-uri']}")

        step("4/5  the model report (what a merge request note shows)")
        env = {**os.environ, **ws.base_variables(), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        subprocess.run([str(VENV_BIN / "mlci"), "report", "--dry-run"], cwd=ws.root, env=env, check=True)

        step("5/5  the monitor's verdict on production: 300 logged requests against the training reference")
        log_requests(ws.root, production["url"])
        verdict = subprocess.run([str(VENV_BIN / "mlci"), "monitor", "--env", "production", "--dry-run"],
                                 cwd=ws.root, env=env, check=False)
        print((ws.out_dir / "monitor-production.md").read_text())
        if verdict.returncode not in (0, 1):
            sys.exit(f"demo failed at: monitor (exit {verdict.returncode})")

        print("\n" + ws.timing_table())
        sample_file = write_sample_request(ws.root)
        print(f"""
\033[1mWhere to look\033[0m
  workspace        {ws.root}
  MLflow UI        {VENV_BIN / 'mlflow'} ui --backend-store-uri {ws.tracking_uri} -h 127.0.0.1 -p 5000
  model report     {ws.out_dir / 'report.md'}  (and report.html)
  served model     {production['url']}  (production, {production['process-model-uri']})
  try it           curl -s -X POST {production['url']}/invocations -H 'Content-Type: application/json' -d @{sample_file}
  stop servers     kill {served(ws, 'staging')['pid']} {production['pid']}
finished in {time.monotonic() - started:.0f} s""")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
