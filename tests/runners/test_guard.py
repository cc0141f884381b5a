"""The host guard of docker pools (the Ansible role's mlci-runner-guard), against a stand-in `docker`.

The stand-in answers `docker ps` / `inspect` / `rm` from a JSON file of containers, so the tests
decide which job containers exist and since when, and see which ones the guard removes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[2] / "mlci/runners/assets/ansible/roles/mlci_gpu_runner"
GUARD = ROLE / "files" / "mlci-runner-guard.py"

FAKE_DOCKER = r'''#!{python}
import json, sys
state_file = {state!r}
containers = json.load(open(state_file))
args = sys.argv[1:]
if args[0] == "ps":
    label = args[args.index("--filter") + 1].split("=", 1)[1]
    print("\n".join(c["id"] for c in containers if c["labels"].get(label.split("=")[0]) == label.split("=")[1]))
elif args[0] == "inspect":
    print(next(c["started"] for c in containers if c["id"] == args[-1]))
elif args[0] == "rm":
    json.dump([c for c in containers if c["id"] != args[-1]], open(state_file, "w"))
    print(args[-1])
'''


@pytest.fixture
def host(tmp_path, monkeypatch):
    state = tmp_path / "containers.json"
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, state=str(state)))
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{docker.parent}{os.pathsep}{os.environ['PATH']}"}

    def containers(*entries):
        state.write_text(json.dumps(list(entries)))

    def remaining():
        return [c["id"] for c in json.loads(state.read_text())]

    def guard(*args):
        return subprocess.run([sys.executable, str(GUARD), *args], env=env, capture_output=True, text=True,
                              timeout=60)

    return containers, remaining, guard, tmp_path


def job(container_id, age, managed=True):
    started = (datetime.now(timezone.utc) - age).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # Docker's nanoseconds
    labels = {"com.gitlab.gitlab-runner.managed": "true"} if managed else {}
    return {"id": container_id, "started": started, "labels": labels}


def test_reap_removes_only_job_containers_past_the_lifetime(host):
    containers, remaining, guard, _ = host
    containers(job("old", timedelta(hours=7)), job("young", timedelta(minutes=5)),
               job("not-a-job", timedelta(days=3), managed=False))
    done = guard("reap", "--max-lifetime", str(6 * 3600))
    assert done.returncode == 0, done.stderr
    assert remaining() == ["young", "not-a-job"]
    assert "removing job container old" in done.stdout


def test_idle_powers_off_only_after_the_timeout_without_jobs(host):
    containers, _, guard, tmp_path = host
    state, marker = tmp_path / "last-busy", tmp_path / "powered-off"
    poweroff = f"touch {marker}"
    idle = ("idle", "--idle-timeout", "600", "--state", str(state), "--metrics-url", "http://127.0.0.1:9/metrics",
            "--poweroff-command", poweroff)

    containers(job("training", timedelta(minutes=1)))
    assert guard(*idle).returncode == 0 and not marker.exists()  # busy

    containers()
    assert guard(*idle).returncode == 0 and not marker.exists()  # idle for seconds only
    long_ago = state.stat().st_mtime - 601
    os.utime(state, (long_ago, long_ago))
    done = guard(*idle)
    assert done.returncode == 0 and marker.exists(), done.stdout + done.stderr
    assert "powering off" in done.stdout


def test_a_running_job_reported_by_the_runner_counts_as_busy(host, httpserver):
    # Before its containers exist (pulling a large CUDA image) a job shows only in the runner's metrics.
    containers, _, guard, tmp_path = host
    httpserver.expect_request("/metrics").respond_with_data(
        '# TYPE gitlab_runner_jobs gauge\n'
        'gitlab_runner_jobs{executor_stage="docker_pulling_image",runner="x",runner_name="mlci-lab",'
        'stage="prepare_executor",state="running",system_id="s"} 1\n')
    state, marker = tmp_path / "last-busy", tmp_path / "powered-off"
    state.write_text("0\n")
    os.utime(state, (0, 0))  # idle since 1970, by the file
    containers()
    done = guard("idle", "--idle-timeout", "60", "--state", str(state), "--metrics-url", httpserver.url_for("/metrics"),
                 "--poweroff-command", f"touch {marker}")
    assert done.returncode == 0 and not marker.exists(), done.stdout + done.stderr
    assert state.stat().st_mtime > 0  # busy now
