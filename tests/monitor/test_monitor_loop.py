"""The feedback loop end to end: serve -> scrape -> decide -> rollback or retrain -> incident.

Real parts only: MLServer (its own uv-built environment) serving registry
versions through `mlci deploy` (target mlserver), a real Prometheus scraping it
through the file_sd file the deploy wrote, a bounded load generator, a real
MLflow sqlite registry, and the loopback GitLab API for the trigger and the
incidents. `mlci` runs as a separate process, as in a job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.gitlab_server import FakeGitLab
from tests.monitor.conftest import EXAMPLE, MODEL, build_registry, features
from tests.servers.load import LoadGenerator

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("monitor-loop")]

WINDOW = "30s"
MIN_REQUESTS = 20

CONFIG = """\
model:
  name: {model}
mlflow:
  tracking-uri: {tracking_uri}
gitlab:
  url: {gitlab_url}
  project: "{project}"
deploy:
  state-dir: {state_dir}
  environments:
    - name: production
      target: mlserver
monitor:
  prometheus:
    url: {prometheus_url}
  window: {window}
  min-requests: {min_requests}
  auto-rollback: false
  rules:
    - name: error-rate
      preset: error-rate
      max: 0.05
    - name: p95-latency
      preset: latency-p95
      max: 5.0
    - name: p95-regression
      preset: latency-p95
      regression:
        max-increase-pct: 100
        baseline-window: 15m  # longer than MLServer's start on a busy machine: v1's last traffic is inside
      action: rollback
  drift:
    logs: [logs/*.ndjson]
    reference: reference.parquet
    exclude: [sample_id, site, collected_at]
    prediction-column: prediction
    target-column: target
    min-rows: 100
  incident:
    labels: [mlci::monitor, production]
"""


@dataclass
class Loop:
    root: Path
    config: Path
    out: Path
    state_dir: Path
    tracking_uri: str
    gitlab: FakeGitLab
    prometheus: object
    load: LoadGenerator | None = None

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MLCI_", "MLFLOW_", "GITLAB_"))}
        return {**base, **self.gitlab.env(), "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}

    def mlci(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mlci", "--config", str(self.config), "--out-dir", str(self.out), *args],
            cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )

    def report(self) -> dict:
        return json.loads((self.out / "monitor-production.json").read_text())

    def served(self) -> dict:
        return json.loads((self.state_dir / "production.json").read_text())

    def marker(self, name: str) -> str | None:
        from mlci.adapters.ci_env import CiEnv
        from mlci.adapters.mlflow import Registry

        holder = Registry(self.tracking_uri, ci=CiEnv()).get_marker(MODEL, name)
        return holder.version if holder else None

    def requests_seen(self, version: str) -> float:
        from mlci.adapters.prometheus import PrometheusClient

        query = (f'sum(increase(rest_server_requests_total{{model_version="{version}",'
                 f'path="/invocations"}}[{WINDOW}]))')
        return PrometheusClient(self.prometheus.url).query_value(query) or 0.0

    def wait_for_traffic(self, version: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.requests_seen(version) < MIN_REQUESTS * 1.5:
            assert time.monotonic() < deadline, (
                f"Prometheus saw too few requests for version {version}: load sent {self.load.sent}, "
                f"ok {self.load.ok}, failed {self.load.failed}; serving {self.served()}")
            time.sleep(1)

    def write_log(self, rows: list[dict]) -> Path:
        """An inference log made the real way: the rows are sent to the live server, its answers recorded."""
        logs = self.root / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir()
        path = logs / "requests.ndjson"
        sender = LoadGenerator(self.served()["url"], rows, rate=50, batch=25, max_requests=len(rows) // 25,
                               max_seconds=60, log_path=path)
        sender.start().wait(timeout=90)
        assert sender.ok == sender.sent, f"{sender.failed} of {sender.sent} logged requests failed"
        return path


def rows_of(frame) -> list[dict]:
    return features(frame).astype("float64").to_dict(orient="records")


@pytest.fixture(scope="module")
def loop(tmp_path_factory, prometheus_server):
    from tests.deploy.conftest import stop_serve_processes

    started = time.monotonic()
    root = tmp_path_factory.mktemp("monitor-loop")
    tracking_uri = build_registry(root)
    shutil.copyfile(EXAMPLE / "data" / "reference.parquet", root / "reference.parquet")
    gitlab = FakeGitLab(host="127.0.0.1", port=0, project_id=77, project_path="ml/tumor-classifier").start()
    state_dir = root / ".mlci" / "serve"
    config = root / "mlci.yml"
    config.write_text(CONFIG.format(
        model=MODEL, tracking_uri=tracking_uri, gitlab_url=gitlab.url, project=gitlab.project_id,
        state_dir=state_dir, prometheus_url=prometheus_server.url, window=WINDOW, min_requests=MIN_REQUESTS,
    ))
    prometheus_server.watch(state_dir / "prometheus")
    state = Loop(root, config, root / "mlci-out", state_dir, tracking_uri, gitlab, prometheus_server)
    try:
        deployed = state.mlci("deploy", "--to", "production", "--version", "1")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        import pandas as pd

        reference = pd.read_parquet(EXAMPLE / "data" / "reference.parquet")
        state.load = LoadGenerator(state.served()["url"], rows_of(reference), rate=5, concurrency=3,
                                   max_requests=20_000, max_seconds=900).start()
        state.wait_for_traffic("1")
        print(f"\nmonitor loop setup (registry, serving env, MLServer v1, first traffic): "
              f"{time.monotonic() - started:.1f} s")
        yield state
    finally:
        if state.load is not None:
            state.load.stop()
        stop_serve_processes([state_dir])
        gitlab.stop()


def test_healthy_traffic_gives_ok(loop):
    import pandas as pd

    started = time.monotonic()
    loop.write_log(rows_of(pd.read_parquet(EXAMPLE / "data" / "reference.parquet").sample(300, random_state=1)))
    loop.wait_for_traffic(loop.marker("production"))
    done = loop.mlci("monitor", "--env", "production")
    assert done.returncode == 0, done.stdout + done.stderr
    report = loop.report()
    assert report["decision"] == "ok", (report["reasons"], report["rules"])
    assert report["traffic"]["requests"] >= MIN_REQUESTS
    assert {rule["name"]: rule["status"] for rule in report["rules"]} == {
        "error-rate": "ok", "p95-latency": "ok", "p95-regression": "ok"}
    assert report["drift"]["status"] == "ok"
    dotenv = (loop.out / "monitor-production.env").read_text()
    assert "MLCI_MONITOR_DECISION=ok" in dotenv
    assert not [i for i in loop.gitlab.state()["issues"] if i["state"] == "opened"], "no incident when healthy"
    print(f"\nhealthy -> ok: {time.monotonic() - started:.1f} s")


def test_planted_latency_regression_rolls_back_in_the_registry(loop):
    started = time.monotonic()
    slow = loop.mlci("deploy", "--to", "production", "--version", "2")
    assert slow.returncode == 0, slow.stdout + slow.stderr
    assert loop.served()["model-version"] == "2"
    assert loop.marker("production") == "2"
    loop.wait_for_traffic("2")

    judged = loop.mlci("monitor", "--env", "production", "--auto-rollback", "true")
    assert judged.returncode == 1, judged.stdout + judged.stderr
    report = loop.report()
    assert report["decision"] == "rollback", (report["reasons"], report["rules"])
    regression = next(rule for rule in report["rules"] if rule["name"] == "p95-regression")
    assert regression["status"] == "breached" and regression["baseline-version"] == "1", regression
    assert regression["value"] > 2 * regression["baseline"]

    # A real rollback: the marker, the audit trail and the live server all went back to version 1.
    assert report["actions"]["rollback"]["done"] is True
    assert loop.marker("production") == "1"
    assert loop.served()["model-version"] == "1"
    rollback_log = json.loads((loop.out / "rollback-production.json").read_text())
    assert rollback_log["status"] == "rolled-back" and rollback_log["to-version"] == "1"
    assert rollback_log["reason"].startswith("mlci monitor: p95-regression")
    targets = json.loads((loop.state_dir / "prometheus" / "production.json").read_text())
    assert targets[0]["labels"]["model_version"] == "1", "the scrape target is relabelled to the live version"

    incidents = [i for i in loop.gitlab.state()["issues"] if i["state"] == "opened"]
    assert len(incidents) == 1 and incidents[0]["issue_type"] == "incident"
    assert "rollback" in incidents[0]["title"] and "p95-regression" in incidents[0]["description"]
    assert set(incidents[0]["labels"]) == {"mlci::monitor", "production"}
    print(f"\nplanted latency regression -> rollback: {time.monotonic() - started:.1f} s")


def test_drifted_inference_log_triggers_retraining(loop):
    import pandas as pd

    started = time.monotonic()
    for issue in loop.gitlab.state()["issues"]:  # a human resolved earlier episodes
        loop.gitlab.issues[issue["iid"]]["state"] = "closed"
    drifted = pd.read_parquet(EXAMPLE / "data" / "reference.parquet").sample(300, random_state=2)
    for column in ("mean_radius", "mean_perimeter", "mean_area", "worst_radius", "worst_area"):
        drifted[column] = drifted[column] * 1.6
    loop.write_log(rows_of(drifted))
    loop.wait_for_traffic(loop.marker("production"))

    judged = loop.mlci("monitor", "--env", "production")
    assert judged.returncode == 1, judged.stdout + judged.stderr
    report = loop.report()
    assert report["decision"] == "retrain", (report["reasons"], report["rules"], report["drift"]["reason"])
    assert "mean_area" in report["drift"]["columns"]
    assert report["actions"]["retrain"]["done"] is True

    state = loop.gitlab.state()
    pipelines = state["pipelines"]
    assert pipelines and pipelines[-1]["variables"]["MLCI_PIPELINE"] == "retrain"
    assert pipelines[-1]["variables"]["MLCI_FORCE_RETRAIN"] == "true"
    opened = [i for i in state["issues"] if i["state"] == "opened"]
    assert len(opened) == 1 and opened[0]["issue_type"] == "incident", "a new episode opens a new incident"
    assert "retrain" in opened[0]["title"]
    assert report["links"]["incident"] == opened[0]["web_url"]
    print(f"\ndrifted inference log -> retrain: {time.monotonic() - started:.1f} s")
