"""`mlci smoke-test` without a model server: unreachable servers, bad inputs, URL resolution; serve bookkeeping."""

import json
import subprocess
import sys
import time

import pytest

from mlci.deploy.probe import rows_payload
from mlci.deploy.serve import ServerState, free_port, is_running, stop_server
from mlci.errors import ConfigError


def smoke(run_cli, project, *args):
    return run_cli(*project.cli("smoke-test", *args))


def dead_url():
    return f"http://127.0.0.1:{free_port('127.0.0.1')}"


def test_unreachable_server_exits_3_after_the_wait_and_still_writes_reports(run_cli, project):
    url = dead_url()
    started = time.monotonic()
    code, _, err = smoke(run_cli, project, "--url", url, "--name", "staging", "--payload",
                         str(write(project.root / "p.json", {"inputs": [[1, 2, 3]]})), "--wait", "0.5")
    assert code == 3
    assert time.monotonic() - started < 10
    assert f"model server {url}/ping" in err and "not ready after 0.5 s" in err
    report = json.loads((project.out / "smoke-staging.json").read_text())
    assert report["status"] == "failed" and report["checks"][0]["name"] == "ping"
    assert "<failure" in (project.out / "smoke-staging.junit.xml").read_text()


def test_a_long_wait_for_ping_is_announced_not_silent(run_cli, project):
    # A stopped server used to mean up to 120 s of silence before the error.
    url = dead_url()
    code, out, _ = smoke(run_cli, project, "--url", url, "--payload",
                         str(write(project.root / "p.json", {"inputs": [[1]]})), "--wait", "1")
    assert code == 3
    assert f"waiting for {url}/ping (not answering yet: ConnectionError" in out
    assert "up to 1 s (--wait)) ..." in out


def test_a_served_environment_whose_server_has_stopped_says_so(run_cli, project):
    # `mlci deploy --to staging` started a server that is gone (killed, machine rebooted): say so and how to fix.
    project.write_config("deploy:\n  environments:\n    - name: staging\n      target: mlflow-serve\n")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    url = dead_url()
    state = ServerState(environment="staging", pid=gone.pid, create_time=time.time() - 60, host="127.0.0.1",
                        port=int(url.rsplit(":", 1)[1]), url=url, model_uri="models:/demo/1", model_version="1",
                        started_at="", log="")
    (project.root / ".mlci" / "serve").mkdir(parents=True)
    write(project.root / ".mlci" / "serve" / "staging.json", state.to_json())
    code, _, err = smoke(run_cli, project, "--env", "staging", "--payload",
                         str(write(project.root / "p.json", {"inputs": [[1]]})), "--wait", "0.5")
    assert code == 3
    assert f"(pid {gone.pid}, {url}) is no longer running; run `mlci deploy --to staging` again" in err


def test_url_comes_from_the_deploy_jobs_dotenv(run_cli, project, clean_env):
    url = dead_url()
    clean_env.setenv("MLCI_DEPLOY_URL", url)
    clean_env.setenv("MLCI_ENVIRONMENT", "staging")
    code, _, err = smoke(run_cli, project, "--env", "production", "--payload",
                         str(write(project.root / "p.json", {"inputs": [[1]]})), "--wait", "0")
    # The dotenv belongs to staging, so it must not be used for production.
    assert code == 2 and "no URL for environment 'production'" in err
    code, _, err = smoke(run_cli, project, "--payload", str(project.root / "p.json"), "--wait", "0")
    assert code == 3 and url in err
    assert (project.out / "smoke-staging.json").exists()


def test_nothing_to_send_is_a_config_error(run_cli, project):
    code, _, err = smoke(run_cli, project, "--url", dead_url())
    assert code == 2 and "the smoke test has nothing to send" in err


def test_invalid_payload_json_points_at_the_line(run_cli, project):
    bad = project.root / "bad.json"
    bad.write_text('{\n  "inputs": [[1, 2],\n}\n')
    code, _, err = smoke(run_cli, project, "--url", dead_url(), "--payload", str(bad))
    assert code == 2 and f"{bad}:3:1" in err and "not valid JSON" in err


def test_rows_from_a_data_file_become_a_dataframe_split_request(project):
    payload = rows_payload(project.root / "sample.csv", rows=2, drop_columns=["label"])
    assert payload["dataframe_split"]["columns"] == ["f0", "f1", "f2"]
    assert payload["dataframe_split"]["data"] == [[0.5, 1.0, -2.0], [3.0, -1.5, 0.25]]
    with pytest.raises(ConfigError, match="drop-columns names columns the data does not have: target"):
        rows_payload(project.root / "sample.csv", rows=2, drop_columns=["target"])
    with pytest.raises(ConfigError, match=r"use \.csv, \.parquet or \.jsonl"):
        rows_payload(project.root / "mlci.yml", rows=2, drop_columns=[])


def write(path, payload):
    path.write_text(json.dumps(payload))
    return path


def test_stop_server_never_kills_a_process_that_merely_reuses_the_pid(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        import psutil

        real = ServerState(
            environment="staging", pid=sleeper.pid, create_time=psutil.Process(sleeper.pid).create_time(),
            host="127.0.0.1", port=1, url="http://127.0.0.1:1", model_uri="models:/demo/1", model_version="1",
            started_at="", log=str(tmp_path / "log"),
        )
        impostor = ServerState(**{**real.__dict__, "create_time": real.create_time - 3600})
        assert stop_server(impostor) is False
        assert sleeper.poll() is None, "a process that is not the recorded server must survive"
        assert stop_server(real) is True
        assert sleeper.wait(timeout=5) is not None
        assert not is_running(real)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
