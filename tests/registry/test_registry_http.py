"""The adapter over HTTP: capability probe, servers that refuse, servers that are gone."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from pytest_httpserver import HTTPServer

from mlci.adapters.ci_env import CiEnv
from mlci.adapters.mlflow import Registry, is_gitlab_mlflow, redact_uri, tracking_uri_scope
from mlci.errors import ExternalServiceError

CI = CiEnv(user_login="bob", pipeline_id="12", job_id="34", commit_sha="cafe")
ALIAS_PATH = "/api/2.0/mlflow/registered-models/alias"


@pytest.fixture
def fast_failing_mlflow(clean_env):
    """MLflow retries refused connections and 5xx for minutes by default; tests fail fast."""
    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    clean_env.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    return clean_env


@pytest.fixture
def http_server():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://gitlab.com/api/v4/projects/123/ml/mlflow", True),
        ("https://git.corp.example/gitlab/api/v4/projects/group%2Fproj/ml/mlflow/", True),
        ("http://127.0.0.1:5000", False),
        ("sqlite:///.mlci/mlflow.db", False),
    ],
)
def test_gitlab_endpoint_detection(uri, expected):
    assert is_gitlab_mlflow(uri) is expected


def test_gitlab_endpoint_uses_tag_mode_without_asking(fast_failing_mlflow):
    # Nothing listens there: the decision must come from the URL alone.
    registry = Registry(f"http://127.0.0.1:{_free_port()}/api/v4/projects/7/ml/mlflow", ci=CI)
    assert registry.mode == "tag"
    assert "GitLab" in registry.mode_reason


def test_probe_picks_tag_mode_when_the_alias_api_is_missing(http_server, fast_failing_mlflow):
    # What a non-MLflow router answers for an unknown route (GitLab's style of body).
    http_server.expect_request(ALIAS_PATH).respond_with_json({"error": "404 Not Found"}, status=404)
    registry = Registry(http_server.url_for("/"), ci=CI)
    assert registry.mode == "tag"
    assert "HTTP 404" in registry.mode_reason
    assert registry.mode == "tag"
    assert len(http_server.log) == 1  # probed once, not per call


def test_probe_picks_alias_mode_when_mlflow_answers(http_server, fast_failing_mlflow):
    http_server.expect_request(ALIAS_PATH).respond_with_json(
        {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=x not found"}, status=404
    )
    registry = Registry(http_server.url_for("/"), ci=CI)
    assert registry.mode == "alias"
    assert "probed" in registry.mode_reason


@pytest.mark.parametrize(
    "respond",
    [
        lambda r: r.respond_with_data("Unauthorized", status=401),
        lambda r: r.respond_with_json({"message": "401 Unauthorized"}, status=401),  # GitLab's body
        lambda r: r.respond_with_json({"error_code": "PERMISSION_DENIED", "message": "no"}, status=403),
    ],
    ids=["plain-401", "gitlab-401", "mlflow-403"],
)
def test_refused_credentials_are_external_errors_with_a_token_hint(http_server, fast_failing_mlflow, respond):
    fast_failing_mlflow.setenv("MLFLOW_TRACKING_TOKEN", "glpat-supersecret")
    respond(http_server.expect_request(re.compile(".*")))
    registry = Registry(http_server.url_for("/").rstrip("/"), mode="alias", ci=CI)
    with pytest.raises(ExternalServiceError) as info:
        registry.run_metrics("abc")
    error = info.value
    assert error.status in (401, 403)
    assert error.exit_code == 3
    assert error.url == http_server.url_for("/").rstrip("/")
    assert "MLFLOW_TRACKING_TOKEN" in error.hint
    assert "glpat-supersecret" not in str(error) + error.hint


def test_refused_probe_is_not_mistaken_for_a_missing_alias_api(http_server, fast_failing_mlflow):
    http_server.expect_request(re.compile(".*")).respond_with_data("Unauthorized", status=401)
    registry = Registry(http_server.url_for("/"), ci=CI)
    with pytest.raises(ExternalServiceError) as info:
        _ = registry.mode
    assert info.value.status == 401


def test_unreachable_server_names_the_url_and_says_what_to_check(fast_failing_mlflow):
    uri = f"http://ci-user:hunter2@127.0.0.1:{_free_port()}"
    registry = Registry(uri, mode="alias", ci=CI)
    started = time.monotonic()
    with pytest.raises(ExternalServiceError) as info:
        registry.get_marker("model", "champion")
    assert time.monotonic() - started < 30
    error = info.value
    assert error.status is None
    assert "hunter2" not in str(error)
    assert error.url == redact_uri(uri) == uri.replace("ci-user:hunter2@", "")
    assert "reachable" in error.hint


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1, stopped by PID at teardown."""
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start:\n" + (tmp_path / "server.log").read_text())
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.mark.slow
def test_real_mlflow_server_alias_mode_end_to_end(mlflow_server, tmp_path, clean_env):
    import mlflow
    from sklearn.dummy import DummyClassifier

    run_ids = []
    with tracking_uri_scope(mlflow_server):
        for strategy in ("most_frequent", "prior"):
            with mlflow.start_run() as run:
                mlflow.log_metric("accuracy", 0.5)
                model = DummyClassifier(strategy=strategy).fit([[0], [1]], [0, 1])
                mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
            run_ids.append(run.info.run_id)

    registry = Registry(mlflow_server, ci=CI)
    assert registry.mode == "alias"
    first, second = (registry.register("served", run_id) for run_id in run_ids)
    assert registry.run_metrics(run_ids[0]) == {"accuracy": 0.5}
    assert registry.move_marker("served", "champion", first.version) is None
    assert registry.move_marker("served", "champion", second.version, reason="newer") == first.version
    assert [v.version for v in registry.latest_versions("served") if "champion" in v.aliases] == [second.version]
    assert registry.audit_trail("served")[-1]["who"] == "bob"
    local = registry.download_run_artifacts(run_ids[0], "model", tmp_path / "dl")
    assert (local / "MLmodel").is_file()


def test_an_unreachable_server_fails_in_seconds_without_any_mlflow_settings(clean_env):
    # MLflow's default (7 retries, exponential backoff) took about four minutes before exit 3,
    # which reads as a hang; mlci lowers the retries unless the user set them.
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        clean_env.setenv(name, "")  # restored (removed) after the test
        clean_env.delenv(name)
    registry = Registry(f"http://127.0.0.1:{_free_port()}", ci=CI)
    started = time.monotonic()
    with pytest.raises(ExternalServiceError) as error:
        registry.get_marker("m", "champion")
    assert time.monotonic() - started < 30
    assert error.value.exit_code == 3
    assert "is the tracking server running" in error.value.hint
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"


def test_the_users_own_mlflow_retry_setting_wins(clean_env):
    from mlci.adapters.mlflow import fail_fast_requests

    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")
    fail_fast_requests()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"
