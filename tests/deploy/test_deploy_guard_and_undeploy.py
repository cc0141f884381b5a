"""Local use cannot ship the wrong thing or leak processes: no implicit deploy right after a failed gate,
and `mlci undeploy` stops the server mlci started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.deploy.conftest import MODEL


def gate_json(project, status: str, model: str = MODEL) -> None:
    project.out.mkdir(exist_ok=True)
    (project.out / "gate.json").write_text(json.dumps({
        "version": 1, "status": status, "passed": status == "passed", "model": model,
        "candidate": {"run_id": "abc123"},
        "verdicts": [{"rule": "rmse <= 50", "status": "failed" if status == "failed" else "passed",
                      "blocking": True}],
    }))


def test_deploy_right_after_a_failed_gate_exits_1_and_says_why(run_cli, project):
    assert run_cli(*project.cli("deploy", "--to", "staging", "--version", "1"))[0] == 0  # v1: the last good one
    gate_json(project, "failed")

    code, _, err = run_cli(*project.cli("deploy", "--to", "staging"))

    assert code == 1
    assert "the last gate in" in err and "gate.json failed for model 'demo'" in err and "rmse <= 50" in err
    assert "--version" in err
    log = json.loads((project.out / "deploy-staging.json").read_text())
    assert log["status"] == "refused"
    assert project.marker("staging") == "1"  # nothing moved, nothing ran again


def test_an_explicit_version_still_deploys_after_a_failed_gate(run_cli, project):
    gate_json(project, "failed")
    code, _, err = run_cli(*project.cli("deploy", "--to", "staging", "--version", "2"))
    assert code == 0, err
    assert project.marker("staging") == "2"


@pytest.mark.parametrize(("status", "model"), [("passed", MODEL), ("failed", "another-model")])
def test_a_passed_gate_or_another_models_gate_does_not_block(run_cli, project, status, model):
    registry = project.registry()
    registry.move_marker(MODEL, "candidate", "2")
    gate_json(project, status, model)
    code, _, err = run_cli(*project.cli("deploy", "--to", "staging"))
    assert code == 0, err
    assert project.marker("staging") == "2"


SERVE = """\
deploy:
  state-dir: serve-state
  environments:
    - name: staging
      target: mlflow-serve
    - name: production
      target: command
      command: "true"
"""


@pytest.fixture
def server(project):
    """A process standing in for `mlflow models serve`, recorded the way mlci records its servers."""
    from mlci.deploy.serve import ServerState, state_path
    from mlci.outputs import write_json

    project.write_config(SERVE)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    state = ServerState(environment="staging", pid=process.pid, create_time=psutil.Process(process.pid).create_time(),
                        host="127.0.0.1", port=5999, url="http://127.0.0.1:5999", model_uri="models:/demo/1",
                        model_version="1", started_at="2024-01-01T00:00:00+00:00", log="serve.log")
    write_json(state_path(project.root / "serve-state", "staging"), {**state.to_json(), "status": "serving"})
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_undeploy_stops_the_recorded_server_and_forgets_it(run_cli, project, server):
    code, out, err = run_cli(*project.cli("undeploy", "--env", "staging"))

    assert code == 0, err
    assert server.wait(timeout=15) is not None
    assert not (project.root / "serve-state" / "staging.json").exists()
    assert f"stopped the 'staging' server (pid {server.pid}" in out
    record = json.loads((project.out / "undeploy-staging.json").read_text())
    assert record["stopped"] is True and record["model_uri"] == "models:/demo/1"

    code, out, _ = run_cli(*project.cli("undeploy", "--env", "staging"))  # again: nothing left to stop
    assert code == 0 and "nothing to stop" in out


def test_undeploy_never_kills_a_process_that_reused_the_pid(run_cli, project, server):
    path = project.root / "serve-state" / "staging.json"
    state = json.loads(path.read_text())
    state["create-time"] -= 1000  # the recorded server died; this PID now belongs to someone else
    path.write_text(json.dumps(state))

    code, out, _ = run_cli(*project.cli("undeploy", "--env", "staging"))

    assert code == 0 and "no longer running" in out
    time.sleep(0.2)
    assert server.poll() is None, "a stranger's process was killed"
    assert not path.exists()


@pytest.mark.parametrize(("env", "message"), [("production", "uses target command"), ("qa", "unknown environment")])
def test_undeploy_of_an_environment_without_a_local_server_is_a_usage_error(run_cli, project, env, message):
    project.write_config(SERVE)
    code, _, err = run_cli(*project.cli("undeploy", "--env", env))
    assert code == 2 and message in err
