"""The fake follows GitLab's documented wire format, so tests against it mean something."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import requests

from tests.conftest import REPO_ROOT


def test_pagination_headers_follow_the_rest_api_docs(fake_gitlab):
    mr = fake_gitlab.add_merge_request()
    for i in range(45):
        fake_gitlab.add_note(mr["iid"], f"n{i}")
    url = f"{fake_gitlab.api_url}/projects/42/merge_requests/1/notes"
    headers = {"PRIVATE-TOKEN": fake_gitlab.token}

    page2 = requests.get(url, params={"per_page": 20, "page": 2}, headers=headers, timeout=5)
    last = requests.get(url, params={"per_page": 20, "page": 3}, headers=headers, timeout=5)

    assert page2.headers["x-page"] == "2" and page2.headers["x-next-page"] == "3"
    assert page2.headers["x-prev-page"] == "1" and page2.headers["x-total"] == "45"
    assert page2.headers["x-total-pages"] == "3" and page2.headers["x-per-page"] == "20"
    assert page2.links["next"]["url"].startswith(url) and "page=3" in page2.links["next"]["url"]
    assert len(page2.json()) == 20 and len(last.json()) == 5
    assert last.headers["x-next-page"] == "" and "next" not in last.links
    newest_first = requests.get(url, headers=headers, timeout=5).json()
    assert newest_first[0]["body"] == "n44"  # GitLab's default order for notes


def test_unauthenticated_and_unknown_routes_use_gitlab_error_bodies(fake_gitlab):
    assert requests.get(f"{fake_gitlab.api_url}/projects/42", timeout=5).json() == {"message": "401 Unauthorized"}
    answer = requests.get(f"{fake_gitlab.api_url}/projects/9", headers={"PRIVATE-TOKEN": fake_gitlab.token},
                          timeout=5)
    assert answer.status_code == 404 and answer.json() == {"message": "404 Project Not Found"}


def test_injected_faults_are_consumed_in_order(fake_gitlab):
    fake_gitlab.fail_next("/pipeline_schedules", 429, times=2, retry_after=7)
    url = f"{fake_gitlab.api_url}/projects/42/pipeline_schedules"
    headers = {"PRIVATE-TOKEN": fake_gitlab.token}
    codes = [requests.get(url, headers=headers, timeout=5) for _ in range(3)]
    assert [c.status_code for c in codes] == [429, 429, 200]
    assert codes[0].headers["Retry-After"] == "7"


def test_standalone_server_dumps_and_persists_state(tmp_path):
    state_dir = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.gitlab_server", "--host", "127.0.0.1", "--port", "0",
         "--state-dir", str(state_dir), "--base-path", "/gitlab", "--branch", "develop"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["url"].endswith("/gitlab")
        headers = {"PRIVATE-TOKEN": "glpat-fakeFakeFake0123456789"}
        created = requests.post(f"{ready['api_url']}/projects/42/pipeline_schedules", headers=headers, timeout=5,
                                data={"description": "nightly", "ref": "develop", "cron": "0 3 * * *"})
        assert created.status_code == 201 and created.json()["ref"] == "refs/heads/develop"
        state = requests.get(f"{ready['url']}/__fake__/state", timeout=5).json()
        assert [s["description"] for s in state["schedules"]] == ["nightly"]
        assert json.loads((state_dir / "state.json").read_text())["schedules"][0]["cron"] == "0 3 * * *"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
