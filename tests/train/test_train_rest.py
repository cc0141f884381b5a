"""The run cache over http(s): a real `mlflow server`, a server that refuses, a server that ignores filters."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from mlci.adapters.mlflow_tracking import find_cached_run, resolve_target
from mlci.errors import ExternalServiceError

QUICK = [sys.executable, "-c", "print('quick training done')"]
FINGERPRINT = "f" * 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path, migrated_store):
    """A real tracking server on 127.0.0.1, stopped by PID at teardown."""
    db = tmp_path / "server.db"
    shutil.copyfile(migrated_store, db)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job runner: eight processes nothing here uses
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "mlflow server did not come up"
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.mark.slow
def test_cache_hit_through_a_real_tracking_server(project, run_cli, monkeypatch, mlflow_server):
    project.write("data/train.csv", "x\n1\n")
    project.config("train:\n  data: [data/train.csv]\n  telemetry-interval: 1\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("CI_PIPELINE_ID", "31")
    code, _, err = run_cli("train", "--", *QUICK)
    assert code == 0, err
    first = project.dotenv()["MLCI_RUN_ID"]

    monkeypatch.setenv("CI_PIPELINE_ID", "32")
    monkeypatch.setenv("CI_JOB_ID", "3201")
    code, out, err = run_cli("train", "--", *QUICK)

    assert code == 0, err
    assert "cache hit" in out and "quick training done" not in out
    assert project.dotenv()["MLCI_RUN_ID"] == first
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=mlflow_server).get_run(first)
    assert run.data.tags["mlci.reused_in_pipeline.32"] == "3201"  # set through the REST API
    assert project.summary()["tracking_uri"] == mlflow_server


def test_a_refusing_server_is_exit_3_with_a_token_hint_and_no_token_in_output(project, run_cli, monkeypatch,
                                                                                httpserver):
    token = "glpat-SuperSecretToken123"
    httpserver.expect_request("/api/v4/projects/7/ml/mlflow/api/2.0/mlflow/experiments/get-by-name").respond_with_json(
        {"error_code": "UNAUTHENTICATED", "message": "401 Unauthorized"}, status=401,
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", httpserver.url_for("/api/v4/projects/7/ml/mlflow"))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    project.config("train:\n  code-paths: [mlci.yml]\n")

    code, out, err = run_cli("train", "--", *QUICK)

    assert code == 3
    assert "(HTTP 401)" in err and "UNAUTHENTICATED" in err
    assert "MLFLOW_TRACKING_TOKEN" in err
    assert token not in out + err
    request, _ = httpserver.log[0]
    assert request.headers["Authorization"] == f"Bearer {token}"


def _run_json(run_id: str, status: str, fingerprint: str, end_time: int) -> dict:
    return {
        "info": {"run_id": run_id, "experiment_id": "3", "status": status, "start_time": end_time - 10,
                 "end_time": end_time},
        "data": {"tags": [{"key": "mlci.fingerprint", "value": fingerprint}]},
    }


def test_a_server_that_ignores_the_search_filter_cannot_fake_a_hit(httpserver):
    # GitLab's MLflow endpoint implements a subset of search; mlci re-checks every run it gets back.
    base = "/api/v4/projects/7/ml/mlflow/api/2.0/mlflow"
    httpserver.expect_request(f"{base}/experiments/get-by-name").respond_with_json(
        {"experiment": {"experiment_id": "3", "name": "demo"}})
    pages = iter([
        {"runs": [_run_json("other", "FINISHED", "0" * 64, 50), _run_json("failed", "FAILED", FINGERPRINT, 60)],
         "next_page_token": "p2"},
        # Older GitLab releases wrap each result in {"run": ...}.
        {"runs": [_run_json("match-old", "FINISHED", FINGERPRINT, 30),
                  {"run": _run_json("match", "FINISHED", FINGERPRINT, 40)}]},
    ])
    bodies = []

    def search(request):
        from werkzeug import Response

        bodies.append(json.loads(request.data))
        return Response(json.dumps(next(pages)), content_type="application/json")

    httpserver.expect_request(f"{base}/runs/search", method="POST").respond_with_handler(search)
    target = resolve_target(httpserver.url_for("/api/v4/projects/7/ml/mlflow"))

    hit = find_cached_run(target, "demo", FINGERPRINT, env={})

    assert hit is not None and hit.run_id == "match"
    assert bodies[0]["filter"] == f"tags.`mlci.fingerprint` = '{FINGERPRINT}' and attributes.status = 'FINISHED'"
    assert bodies[1]["page_token"] == "p2"
    assert "order_by" not in bodies[0]  # GitLab wants a string there, MLflow a list: send neither


def test_an_unknown_experiment_is_a_miss_and_a_broken_server_is_an_error(httpserver):
    base = "/api/2.0/mlflow"
    httpserver.expect_request(f"{base}/experiments/get-by-name").respond_with_json(
        {"error_code": "RESOURCE_DOES_NOT_EXIST"}, status=404)
    target = resolve_target(httpserver.url_for("/"))
    assert find_cached_run(target, "new-project", FINGERPRINT, env={}) is None

    httpserver.clear()
    httpserver.expect_request(f"{base}/experiments/get-by-name").respond_with_data("<html>oops</html>", status=502)
    with pytest.raises(ExternalServiceError) as info:
        find_cached_run(target, "new-project", FINGERPRINT, env={})
    assert info.value.status == 502
    assert info.value.exit_code == 3
    assert "get-by-name" in info.value.message


@pytest.mark.parametrize("cache", [True, False], ids=["cache-lookup-over-rest", "run-over-mlflowclient"])
def test_credentials_in_the_tracking_uri_never_reach_the_output(project, run_cli, monkeypatch, httpserver, cache):
    """user:password in MLFLOW_TRACKING_URI and a 401: exit 3, the URL shown without them, on both paths."""
    host = f"127.0.0.1:{httpserver.port}"
    uri = f"http://user:secret@{host}"
    # Like a proxy in front of the server, the refusal quotes the URL it was asked for.
    httpserver.expect_request(re.compile("/api/.*")).respond_with_json(
        {"error_code": "UNAUTHENTICATED", "message": f"401 Unauthorized: {uri}/api/2.0/mlflow"}, status=401,
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    project.config("train:\n  code-paths: [mlci.yml]\n")

    code, out, err = run_cli("train", *([] if cache else ["--no-cache"]), "--", *QUICK)

    assert code == 3, err
    assert f"http://{host}" in err and "(HTTP 401)" in err
    assert "secret" not in out + err and "user:" not in out + err
    assert "MLFLOW_TRACKING_TOKEN" in err  # the credentials hint
    assert "quick training done" not in out
    request, _ = httpserver.log[0]
    assert request.authorization.username == "user"  # the credentials are still used, only never shown


def test_an_unreachable_server_named_with_credentials_is_exit_3_without_them(project, run_cli, monkeypatch):
    """MLflow's connection errors repeat the whole URL; the run path must strip user:password from them."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://user:secret@127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    project.config("train:\n  code-paths: [mlci.yml]\n")

    code, out, err = run_cli("train", "--no-cache", "--", *QUICK)

    assert code == 3, err
    assert "could not look up experiment 'mlci'" in err and "http://127.0.0.1:" in err
    assert "secret" not in out + err
