"""Target mlflow-serve and the smoke test against a real `mlflow models serve` of registered versions.

Three servers start in this file: the module's staging deploy of version 1,
then version 2 and the rollback to version 1. Every one binds 127.0.0.1 and
is stopped by PID at teardown, even when a test fails.
"""

import json
import os
import xml.etree.ElementTree as ET

import psutil
import pytest
import requests

from mlci.cli import main
from mlci.deploy.serve import is_running, read_state
from mlci.outputs.dotenv import read_dotenv
from tests.deploy.conftest import FEATURES, SAMPLE_ROWS, expected_predictions, make_project, stop_serve_processes

# One worker runs them all under `--dist loadgroup` (make test), so one module server serves every test.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy-serve")]

SERVE_DEPLOY = """\
deploy:
  environments:
    - name: staging
      target: mlflow-serve
      serve:
        start-timeout: 90
      smoke:
        data: sample.csv
        drop-columns: [label]
        rows: 4
        requests: 8
        wait: 30
    - name: production
      target: command
      command: "true"
"""


def predict(url, rows=SAMPLE_ROWS):
    response = requests.post(
        f"{url}/invocations", json={"dataframe_split": {"columns": FEATURES, "data": rows}}, timeout=30
    )
    response.raise_for_status()
    return response.json()["predictions"]


def assert_predictions(actual, version):
    assert actual == pytest.approx(expected_predictions(version), abs=1e-6)


def listening_addresses(pid):
    """Every address the server process (and its uvicorn child) listens on."""
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {
        conn.laddr.ip
        for process in processes
        for conn in process.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }


def cli(project, *args):
    return main(project.cli(*args))


@pytest.fixture(scope="module")
def staging_v1(tmp_path_factory, registry_store):
    """Version 1 deployed to staging with target mlflow-serve; the server stops after the module."""
    project = make_project(tmp_path_factory.mktemp("serve") / "project", registry_store)
    project.write_config(SERVE_DEPLOY)
    state_dir = project.root / ".mlci" / "serve"
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(("CI_", "MLCI_", "MLFLOW_", "GITLAB_"))]:
            patch.delenv(name)
        patch.chdir(project.root)
        try:
            assert cli(project, "deploy", "--to", "staging", "--version", "1") == 0
            yield project
        finally:
            stop_serve_processes([state_dir])


def test_staging_serves_the_pinned_version_on_loopback_only(staging_v1):
    state = read_state(staging_v1.root / ".mlci" / "serve", "staging")
    assert (state.model_version, state.model_uri, state.host) == ("1", "models:/demo/1", "127.0.0.1")
    assert is_running(state)
    assert_predictions(predict(state.url), "1")
    assert listening_addresses(state.pid) == {"127.0.0.1"}
    assert read_dotenv(staging_v1.out / "deploy-staging.env")["MLCI_DEPLOY_URL"] == state.url
    assert staging_v1.marker("staging") == "1"


def test_smoke_test_passes_against_the_served_model(staging_v1, tmp_path, capsys):
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"predictions": expected_predictions("1")}))
    code = main(["--config", str(staging_v1.config), "--out-dir", str(tmp_path),
                 "smoke-test", "--env", "staging", "--expect", str(expected)])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "smoke-staging.json").read_text())
    assert report["status"] == "passed" and report["requests"] == 8
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "ping": "passed", "status": "passed", "response-shape": "passed", "expected-predictions": "passed",
        "latency-p95": "passed",
    }
    assert 0 < report["latency"]["p50-ms"] <= report["latency"]["p95-ms"]
    junit = ET.parse(tmp_path / "smoke-staging.junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("5", "0", "0")


def test_smoke_test_with_a_broken_payload_fails(staging_v1, tmp_path, capsys):
    payload = tmp_path / "broken.json"
    payload.write_text(json.dumps({"dataframe_split": {"columns": ["nope"], "data": [["text"]]}}))
    code = main(["--config", str(staging_v1.config), "--out-dir", str(tmp_path),
                 "smoke-test", "--env", "staging", "--payload", str(payload), "--requests", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "smoke test of http://127.0.0.1:" in err and "status" in err
    report = json.loads((tmp_path / "smoke-staging.json").read_text())
    status = next(c for c in report["checks"] if c["name"] == "status")
    assert status["status"] == "failed" and "HTTP 400" in status["message"]
    junit = ET.parse(tmp_path / "smoke-staging.junit.xml").getroot()
    assert int(junit.get("failures")) >= 1


def test_smoke_test_with_an_impossible_latency_budget_fails(staging_v1, tmp_path, capsys):
    code = main(["--config", str(staging_v1.config), "--out-dir", str(tmp_path),
                 "smoke-test", "--env", "staging", "--requests", "3", "--p95-budget-ms", "0.001"])
    assert code == 1
    report = json.loads((tmp_path / "smoke-staging.json").read_text())
    failed = [c["name"] for c in report["checks"] if c["status"] == "failed"]
    assert failed == ["latency-p95"]
    assert "exceeds the budget of 0.001 ms" in capsys.readouterr().out


def test_without_a_configured_payload_the_models_own_input_example_is_sent(staging_v1, tmp_path, capsys):
    bare = staging_v1.root / "bare.yml"  # same project dir, so the same recorded server
    bare.write_text(staging_v1.config.read_text().split("deploy:")[0]
                    + "deploy:\n  environments:\n    - name: staging\n    - name: production\n")
    code = main(["--config", str(bare), "--out-dir", str(tmp_path), "smoke-test", "--env", "staging",
                 "--requests", "2"])
    assert code == 0, capsys.readouterr()
    report = json.loads((tmp_path / "smoke-staging.json").read_text())
    assert report["payload"] == "serving_input_example.json of models:/demo/1"
    assert len(report["predictions-sample"]) == 2


def test_smoke_test_notices_the_wrong_model_version(staging_v1, tmp_path):
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps(expected_predictions("2")))
    code = main(["--config", str(staging_v1.config), "--out-dir", str(tmp_path),
                 "smoke-test", "--env", "staging", "--expect", str(expected), "--requests", "1"])
    assert code == 1
    report = json.loads((tmp_path / "smoke-staging.json").read_text())
    assert [c["name"] for c in report["checks"] if c["status"] == "failed"] == ["expected-predictions"]


def test_redeploy_and_rollback_swap_the_served_model_by_pid(staging_v1, monkeypatch):
    # Starts from the module's v1 server and ends with v1 served again, so
    # the smoke tests above see version 1 whichever order the tests run in.
    project = staging_v1
    monkeypatch.chdir(project.root)
    state_dir = project.root / ".mlci" / "serve"
    first = read_state(state_dir, "staging")
    assert first.model_version == "1"
    try:
        assert cli(project, "deploy", "--to", "staging", "--version", "2") == 0
        second = read_state(state_dir, "staging")
        assert not is_running(first), "the previous server must be stopped by its PID"
        assert second.pid != first.pid and second.url == first.url  # same port: a stable environment URL
        assert_predictions(predict(second.url), "2")

        assert cli(project, "rollback", "--env", "staging", "--reason", "v2 drifts") == 0
        third = read_state(state_dir, "staging")
        assert not is_running(second)
        assert (third.model_version, third.model_uri) == ("1", "models:/demo/1")
        assert_predictions(predict(third.url), "1")  # the served model really is version 1 again
        assert project.marker("staging") == "1"
        log = json.loads((project.out / "rollback-staging.json").read_text())
        assert (log["from-version"], log["to-version"], log["reason"]) == ("2", "1", "v2 drifts")
        assert log["url"] == third.url
    except BaseException:
        stop_serve_processes([state_dir])  # whatever serves now is not the module's v1
        raise
