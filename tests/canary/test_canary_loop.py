"""Canary releases end to end on loopback: start -> split -> traffic -> analyze -> promote or abort.

Real parts only: MLServer serving registry versions (target mlserver), a real
nginx splitting the traffic as `mlci canary` renders and reloads it, a real
Prometheus scraping both servers through the file_sd files the deploys wrote,
a bounded load generator, and a real MLflow sqlite registry. `mlci` runs as a
separate process, as in a job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.canary.conftest import build_registry
from tests.monitor.conftest import EXAMPLE, MODEL, features
from tests.servers.load import LoadGenerator

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("canary-loop")]

ALPHA = 0.05
# A canary that sees too little traffic is stopped after this long (`--set` at its start).
STUCK_AFTER_SECONDS = 45
CONFIG = """\
model:
  name: {model}
mlflow:
  tracking-uri: {tracking_uri}
deploy:
  state-dir: {state_dir}
  environments:
    - name: staging
      target: command
      command: ["true"]
    - name: production
      target: mlserver
      # The planted models answer at once: inference in the server process itself saves one Python per server.
      mlserver: {{parallel-workers: 0}}
  canary:
    percent: 50
    alpha: {alpha}
    max-looks: 3
    min-duration: 0s
    max-duration: 1h
    poll: 1s
    metrics:
      - name: error-rate
        kind: error-rate
        min-effect: 0.1
        baseline: 0.01
    router:
      type: nginx
      listen: 127.0.0.1:{port}
      config: {include}
      test-command: {test_command}
      reload-command: {reload_command}
monitor:
  prometheus:
    url: {prometheus_url}
"""


@dataclass
class Project:
    root: Path
    config: Path
    out: Path
    state_dir: Path
    tracking_uri: str
    router_url: str
    rows: list[dict]

    def mlci(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MLCI_", "MLFLOW_", "GITLAB_"))}
        return subprocess.run(
            [sys.executable, "-m", "mlci", "--config", str(self.config), "--out-dir", str(self.out), *args],
            cwd=self.root, env={**base, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"},
            capture_output=True, text=True, timeout=timeout,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        done = self.mlci(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def registry(self):
        from mlci.adapters.ci_env import CiEnv
        from mlci.adapters.mlflow import Registry

        return Registry(self.tracking_uri, ci=CiEnv())

    def marker(self, name: str) -> str | None:
        holder = self.registry().get_marker(MODEL, name)
        return holder.version if holder else None

    def report(self) -> dict:
        return json.loads((self.out / "canary-production.json").read_text())

    def served_by(self, calls: int = 40) -> Counter:
        """Versions named by the router's response header over `calls` scoring requests."""
        seen: Counter = Counter()
        payload = {"dataframe_split": {"columns": list(self.rows[0]), "data": [list(self.rows[0].values())]}}
        with requests.Session() as session:
            for _ in range(calls):
                response = session.post(f"{self.router_url}/invocations", json=payload, timeout=10)
                seen[response.headers.get("X-Model-Version")] += 1
        return seen

    def wait_served_by(self, versions: set[str], timeout: float = 20) -> Counter:
        """nginx applies a reload in new workers: wait until the split matches."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.served_by(20)
            if set(seen) == versions or time.monotonic() > deadline:
                return seen
            time.sleep(0.3)

    def traffic(self, requests_total: int) -> LoadGenerator:
        load = LoadGenerator(url=self.router_url, rows=self.rows, rate=60, concurrency=3,
                             max_requests=requests_total, max_seconds=120).start()
        load.wait(timeout=150)
        time.sleep(2.5)  # two scrapes: the last requests are in Prometheus
        return load


@pytest.fixture(scope="module")
def project(tmp_path_factory, prometheus_server, nginx_server):
    root = tmp_path_factory.mktemp("canary")
    tracking_uri = build_registry(root)
    state_dir = root / "state"
    prometheus_server.watch(state_dir / "prometheus")
    config = root / "mlci.yml"
    config.write_text(CONFIG.format(
        model=MODEL, tracking_uri=tracking_uri, state_dir=state_dir, alpha=ALPHA, port=nginx_server.port,
        include=nginx_server.include_dir / "production.conf", prometheus_url=prometheus_server.url,
        test_command=json.dumps(nginx_server.test_command), reload_command=json.dumps(nginx_server.reload_command),
    ), encoding="utf-8")
    frame = pd.read_parquet(EXAMPLE / "data" / "patients.parquet")
    rows = features(frame).astype("float64").head(50).to_dict(orient="records")
    project = Project(root, config, root / "out", state_dir, tracking_uri, nginx_server.url, rows)
    project.ok("deploy", "--to", "staging", "--version", "1")
    project.ok("deploy", "--to", "production", "--version", "1")
    yield project
    from mlci.deploy.serve import read_state, stop_server

    for name in ("production", "production-canary"):
        state = read_state(state_dir, name)
        if state is not None:
            stop_server(state)


def test_a_canary_with_a_planted_error_rate_rolls_back_with_p_below_alpha(project):
    stable = project.marker("production")
    project.ok("deploy", "--to", "staging", "--version", "2")
    started = project.ok("canary", "start", "--env", "production", "--version", "2")
    assert "takes 50% of the traffic" in started.stdout + started.stderr
    include = (project.root / "mlci.yml").read_text()
    assert "split_clients" in Path(include.split("config: ")[1].split("\n")[0]).read_text()
    seen = project.wait_served_by({stable, "2"})
    assert set(seen) == {stable, "2"}, f"each response names the version that served it: {seen}"

    # Before enough traffic there is nothing to decide.
    waiting = project.mlci("canary", "analyze", "--env", "production")
    assert waiting.returncode == 0, waiting.stderr
    assert project.report()["decision"] == "continue"

    project.traffic(400)
    done = project.mlci("canary", "analyze", "--env", "production", "--act", "--wait", "60s")
    assert done.returncode == 1, done.stdout + done.stderr
    report = project.report()
    assert report["decision"] == "rollback"
    metric = report["metrics"][0]
    assert metric["status"] == "harm" and metric["test"]["p"] < ALPHA
    assert metric["samples"]["canary"]["rate"] > metric["samples"]["stable"]["rate"]
    assert metric["effect"]["ci"][0] > 0, "the interval of the difference excludes no effect"
    assert report["actions"]["action"] == "canary-abort"
    markdown = (project.out / "canary-production.md").read_text()
    assert "**rollback**" in markdown and "Rule that decided" in markdown
    assert "MLCI_CANARY_DECISION=rollback" in (project.out / "canary-production.env").read_text()
    junit = (project.out / "canary-production.junit.xml").read_text()
    assert "<failure" in junit

    # All traffic is back on the stable version, the canary's server is gone, the marker never moved.
    assert set(project.wait_served_by({stable})) == {stable}
    assert not (project.state_dir / "production-canary.json").exists()
    assert project.marker("production") == stable
    actions = [record.get("action") for record in project.registry().audit_trail(MODEL, "2")]
    assert "canary-start" in actions and "canary-abort" in actions


def test_an_equal_canary_is_promoted_after_the_minimum_sample(project):
    project.ok("deploy", "--to", "staging", "--version", "3")
    project.ok("canary", "start", "--env", "production", "--version", "3")
    # A second experiment in the same environment is refused while this one runs.
    again = project.mlci("canary", "start", "--env", "production", "--version", "3")
    assert again.returncode == 1 and "already running" in again.stderr
    early = project.mlci("canary", "promote", "--env", "production")
    assert early.returncode == 1 and "refusing to promote" in early.stderr

    project.traffic(600)
    done = project.mlci("canary", "analyze", "--env", "production", "--act", "--wait", "90s")
    assert done.returncode == 0, done.stdout + done.stderr
    report = project.report()
    assert report["decision"] == "promote", report["rule"]
    metric = report["metrics"][0]
    assert metric["status"] == "complete"
    planned = metric["design"]
    assert metric["samples"]["canary"]["requests"] >= planned["n-canary"] * 0.95
    assert project.marker("production") == "3"
    assert set(project.wait_served_by({"3"})) == {"3"}
    deploy_log = json.loads((project.out / "deploy-production.json").read_text())
    assert deploy_log["to-version"] == "3" and deploy_log["status"] == "deployed"


def test_a_canary_without_enough_traffic_continues_then_rolls_back_at_max_duration(project):
    stable = project.marker("production")
    project.ok("deploy", "--to", "staging", "--version", "4")
    project.ok("--set", f"deploy.canary.max-duration={STUCK_AFTER_SECONDS}s", "canary", "start", "--env", "production",
               "--version", "4")
    started = time.monotonic()  # the experiment's clock started a moment earlier, inside `canary start`
    trickle = project.served_by(20)
    assert set(trickle) == {stable, "4"}, trickle

    waiting = project.mlci("canary", "analyze", "--env", "production", "--act")
    assert waiting.returncode == 0, waiting.stdout + waiting.stderr
    assert project.report()["decision"] == "continue", "a trickle of traffic decides nothing"
    assert project.marker("production") == stable

    time.sleep(max(0.0, started + STUCK_AFTER_SECONDS + 1 - time.monotonic()))
    stuck = project.mlci("canary", "analyze", "--env", "production", "--act")
    assert stuck.returncode == 1, stuck.stdout + stuck.stderr
    report = project.report()
    assert report["decision"] == "rollback" and "max-duration" in report["rule"], report["rule"]
    assert report["actions"]["action"] == "canary-abort"
    assert set(project.wait_served_by({stable})) == {stable}
    assert project.marker("production") == stable
    assert not (project.state_dir / "production-canary.json").exists()
