"""The canary-secret test: distinct secrets in every secret-bearing input, every command run on its happy
and error paths, and every byte mlci wrote searched for them. Zero hits.

Planted: the tracking URI's password, the MLflow token, the GitLab API token, the trigger token, the CI
job token, user variables named like secrets, a variable listed in MLCI_MASKED_VARIABLES, and query
tokens (the MLflow UI link, the webhook URL). The training command, the deploy command and the hook
print their whole environment on purpose, the way a careless script would.

Searched: each command's stdout and stderr, every file written under the project (mlci-out/, .mlci/,
anything else), the MLflow server's store and artifacts (tags, params, descriptions, logs), every request
the GitLab fake received (body, form, files, query; not the auth header itself, nor the trigger form's
`token` field, which is the trigger API's credential), and every webhook body.

To cover a new command, append one line to CASES.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import typing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.harness import REPO_ROOT, VENV_BIN, free_port, start_service
from tests.fakes.gitlab_server import FakeGitLab

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("canary")]

CANARY = {
    "uri_password": "CanaryUriPw-7f3a9c21",
    "mlflow_token": "CanaryMlflowTok-19ab77",
    "gitlab_token": "glpat-CanaryGitlab0123456789",
    "trigger_token": "glptt-CanaryTrigger0123456789",
    "job_token": "CanaryJobToken-5521aa",
    "db_password": "CanaryDbPassword-88cc",
    "hf_token": "CanaryHfToken-3131dd",
    "aws_key": "CanaryAwsSecretKey-4242ee",
    "masked_var": "CanaryMaskedVar-9090ff",
    "ui_query_token": "CanaryUiQueryTok-3107",
    "webhook_query_token": "CanaryHookQueryTok-7713",
    "webhook_header": "CanaryHookHeader-6161",
}


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    codes: tuple[int, ...] = (0,)
    env: dict[str, str] = field(default_factory=dict)
    setup: str = ""  # a World method run first (fault injection)


CASES = [
    Case("config show", ("config", "show")),
    Case("config show json", ("config", "show", "--format", "json")),
    Case("config show yaml", ("config", "show", "--format", "yaml")),
    Case("config bad override", ("--set", "gate.on-no-champion=never", "config", "show"), codes=(2,)),
    Case("lint", ("lint", ".gitlab-ci.yml")),
    Case("lint token literal", ("lint", "leaky-ci.yml"), codes=(1,)),
    Case("data check", ("data", "check")),
    Case("data check missing file", ("data", "check", "missing.csv"), codes=(2,)),
    Case("data drift", ("data", "drift", "--reference", "data/train.csv", "data/train.csv")),
    Case("train", ("train",)),
    Case("train cache hit", ("train",)),
    Case("gate", ("gate",)),
    Case("gate unknown run", ("gate", "--run", "0" * 32), codes=(3,)),
    Case("report", ("report",)),
    Case("report again", ("report",)),
    Case("report gitlab down", ("report",), codes=(3,), setup="gitlab_down"),
    Case("model card", ("report", "model-card")),
    Case("deploy", ("deploy", "--to", "staging")),
    Case("deploy failing", ("deploy", "--to", "production"), codes=(1,), env={"DEPLOY_FAIL": "1"}),
    Case("rollback nothing earlier", ("rollback", "--env", "staging"), codes=(1, 2)),
    Case("undeploy, no local server", ("undeploy", "--env", "staging"), codes=(2,)),
    Case("smoke-test unreachable", ("smoke-test", "--payload", "payload.json", "--url",
                                    f"http://probe:{CANARY['uri_password']}@127.0.0.1:9", "--wait", "1"),
         codes=(1, 3)),
    Case("schedule sync", ("schedule", "sync")),
    Case("schedule list", ("schedule", "list", "--all")),
    Case("trigger", ("trigger",)),
    Case("trigger rejected", ("trigger",), codes=(3,), setup="trigger_rejected"),
    Case("trigger pipelines api", ("trigger", "--api", "pipelines")),
    Case("retrain decide", ("retrain", "decide", "--force")),
    Case("retrain conclude", ("retrain", "conclude"),
         env={"MLCI_GATE": "passed", "MLCI_MODEL_NAME": "canary", "MLCI_MODEL_VERSION": "1"}),
    Case("hook", ("hook", "fetch-data")),
    Case("hook failing", ("hook", "fetch-data", "--", sys.executable, "fetch.py", "--fail"), codes=(5,)),
    Case("init", ("init", "--dir", "fresh"), setup="fresh_directory"),
    Case("train explain cache", ("train", "--explain-cache")),
    Case("train failing command", ("train", "--no-cache", "--", sys.executable, "train.py", "--fail"), codes=(3,)),
    Case("generate", ("generate", "--out", "generated")),
]

TRAIN_PY = '''
import json, os, sys
import mlflow, mlflow.sklearn
import numpy as np
from sklearn.linear_model import Ridge

print("environment:", json.dumps(dict(os.environ), sort_keys=True))
print("tracking at", os.environ["MLFLOW_TRACKING_URI"])
print("Authorization: Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"], file=sys.stderr)
if "--fail" in sys.argv:
    sys.exit(3)
rows = [line.split(",") for line in open("data/train.csv").read().split()[1:]]
x = np.array([[float(a), float(b)] for a, b, _ in rows])
y = np.array([float(t) for _, _, t in rows])
model = Ridge(alpha=float(os.environ.get("ALPHA", "1.0"))).fit(x, y)
rmse = float(np.sqrt(np.mean((model.predict(x) - y) ** 2)))
with mlflow.start_run():
    mlflow.log_metric("rmse", rmse)
    mlflow.log_text("y_true,y_pred\\n" + "".join(f"{a},{b}\\n" for a, b in zip(y, model.predict(x))),
                    "predictions.csv")
    mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
print("rmse", rmse)
'''

PRINT_ENV_PY = '''
import json, os, sys
print("env:", json.dumps(dict(os.environ), sort_keys=True))
print("uri:", os.environ.get("MLFLOW_TRACKING_URI"), file=sys.stderr)
sys.exit(5 if "--fail" in sys.argv or os.environ.get("DEPLOY_FAIL") else 0)
'''


class _WebhookReceiver(BaseHTTPRequestHandler):
    bodies: typing.ClassVar[list[bytes]] = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        _WebhookReceiver.bodies.append(self.rfile.read(length))  # the URL (with its token) is the address
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class World:
    """One project, one MLflow server, one GitLab fake, one webhook receiver; every command run once, in order."""

    def __init__(self, root: Path):
        self.root = root
        self.project = root / "project"
        self.services = []
        self.outputs: dict[str, tuple[int, str, str]] = {}
        self.gitlab = FakeGitLab(host="127.0.0.1", port=0, token=CANARY["gitlab_token"],
                                 trigger_token=CANARY["trigger_token"]).start()
        self.gitlab.add_merge_request(source_branch="feature")
        self.mlflow = self._start_mlflow()
        self.services.append(self.mlflow)
        _WebhookReceiver.bodies = []
        self.webhooks = ThreadingHTTPServer(("127.0.0.1", free_port()), _WebhookReceiver)
        threading.Thread(target=self.webhooks.serve_forever, daemon=True).start()
        self._write_project()

    def _start_mlflow(self):
        store = self.root / "mlflow-store"
        store.mkdir()
        port = free_port()
        cmd = [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination",
               str(store / "artifacts")]
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        # A busy 2-core machine can take minutes to import the server.
        return start_service("mlflow-server", cmd, f"http://127.0.0.1:{port}", "/health", self.root, env=env,
                             timeout=300)

    def stop(self) -> None:
        self.gitlab.stop()
        self.webhooks.shutdown()
        for service in self.services:
            service.stop()

    # ------------------------------------------------------------------ inputs
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MLCI_", "MLFLOW_", "GITLAB_"))}
        host = self.mlflow.url.removeprefix("http://")
        hook_port = self.webhooks.server_address[1]
        return {
            **keep,
            "PYTHONPATH": str(REPO_ROOT),
            "MLFLOW_TRACKING_URI": f"http://canary:{CANARY['uri_password']}@{host}",
            "MLFLOW_TRACKING_TOKEN": CANARY["mlflow_token"],
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLCI_GITLAB_TOKEN": CANARY["gitlab_token"],
            "MLCI_TRIGGER_TOKEN": CANARY["trigger_token"],
            "MLCI_GITLAB_RETRY_BACKOFF": "0",
            "CI_JOB_TOKEN": CANARY["job_token"],
            "DB_PASSWORD": CANARY["db_password"],
            "HF_TOKEN": CANARY["hf_token"],
            "AWS_SECRET_ACCESS_KEY": CANARY["aws_key"],
            "MLCI_MASKED_VARIABLES": "WAREHOUSE_CONN",
            "WAREHOUSE_CONN": CANARY["masked_var"],
            "ALERT_URL": f"http://127.0.0.1:{hook_port}/notify?token={CANARY['webhook_query_token']}",
            "ALERT_AUTH": CANARY["webhook_header"],
            "CI_SERVER_URL": self.gitlab.url,
            "CI_PROJECT_ID": str(self.gitlab.project_id),
            "CI_PROJECT_PATH": self.gitlab.project_path,
            "CI_PROJECT_URL": self.gitlab.project_web_url,
            "CI_PROJECT_NAME": "canary",
            "CI_DEFAULT_BRANCH": "main",
            "CI_COMMIT_SHA": "a" * 40,
            "CI_COMMIT_REF_NAME": "feature",
            "CI_MERGE_REQUEST_IID": "1",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
            "CI_PIPELINE_ID": "100",
            "CI_JOB_ID": "7001",
            "CI_PIPELINE_URL": f"{self.gitlab.project_web_url}/-/pipelines/100",
            "CI_JOB_URL": f"{self.gitlab.project_web_url}/-/jobs/7001",
        }

    def _write_project(self) -> None:
        p = self.project
        (p / "data").mkdir(parents=True)
        (p / "data" / "train.csv").write_text("a,b,target\n" + "".join(
            f"{i},{i % 7},{2 * i + (i % 7) * 0.5}\n" for i in range(40)))
        (p / "train.py").write_text(TRAIN_PY)
        (p / "payload.json").write_text('{"inputs": [[1.0, 2.0]]}')
        for name in ("deploy.py", "fetch.py"):
            (p / name).write_text(PRINT_ENV_PY)
        (p / "mlci.yml").write_text(textwrap.dedent(f"""\
            project: {{name: canary}}
            model: {{name: canary, metrics-direction: {{rmse: lower}}}}
            data:
              sources:
                train:
                  path: data/train.csv
                  contract: {{rows: {{min: 5}}, columns: {{target: {{not-null: true}}}}}}
            train:
              command: {sys.executable} train.py
              code-paths: [train.py]
              data: [data/train.csv]
              telemetry-interval: 60
            gate:
              rules: [{{metric: rmse, max: 1000}}]
            report:
              mlflow-ui-url: "http://mlflow-ui.invalid/?access_token={CANARY['ui_query_token']}"
            deploy:
              environments:
                - {{name: staging, target: command, command: "{sys.executable} deploy.py"}}
                - {{name: production, target: command, command: "{sys.executable} deploy.py"}}
            schedules:
              - {{description: Nightly retraining, cron: "0 3 * * *", variables: {{MLCI_PIPELINE: retrain}}}}
            retrain:
              notify:
                - {{url-variable: ALERT_URL, headers: {{X-Alert-Auth: ALERT_AUTH}}}}
              hooks:
                fetch-data: {sys.executable} fetch.py
            """))
        (p / ".gitlab-ci.yml").write_text(textwrap.dedent("""\
            stages: [test]
            train:
              stage: test
              image: python:3.12-slim
              timeout: 1h
              script: [mlci train]
            """))
        (p / "leaky-ci.yml").write_text(textwrap.dedent(f"""\
            variables:
              API_TOKEN: "{CANARY['gitlab_token']}"
            job:
              image: python:3.12-slim
              script: [echo]
            """))
        self.inputs = {path for path in p.rglob("*") if path.is_file()}
        subprocess.run(["git", "init", "-q"], cwd=p, check=True)
        subprocess.run(["git", "add", "-A"], cwd=p, check=True)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], cwd=p,
                       check=True)

    # ------------------------------------------------------------------ fault injection
    def gitlab_down(self) -> None:
        self.gitlab.fail_next(r"/notes", 500, times=10)

    def fresh_directory(self) -> None:
        (self.project / "fresh").mkdir()

    def trigger_rejected(self) -> None:
        self.gitlab.fail_next(r"/trigger/pipeline$", 401, body={"message": "401 Unauthorized"})

    # ------------------------------------------------------------------ running
    def run(self, case: Case) -> tuple[int, str, str]:
        if case.setup:
            getattr(self, case.setup)()
        proc = subprocess.run(
            [sys.executable, "-m", "mlci", *case.argv], cwd=self.project, env={**self.env(), **case.env},
            capture_output=True, timeout=600,
        )
        result = (proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))
        self.outputs[case.name] = result
        return result

    # ------------------------------------------------------------------ what was written
    def written(self) -> dict[str, bytes]:
        blobs: dict[str, bytes] = {}
        for path in sorted(self.project.rglob("*")):
            if path.is_file() and ".git" not in path.relative_to(self.project).parts and path not in self.inputs:
                blobs[f"file {path.relative_to(self.project)}"] = path.read_bytes()
        for path in sorted((self.root / "mlflow-store").rglob("*")):
            if path.is_file():
                blobs[f"mlflow {path.relative_to(self.root)}"] = path.read_bytes()
        for index, request in enumerate(self.gitlab.requests):
            form = dict(request.form)
            if request.path.endswith("/trigger/pipeline"):
                form.pop("token", None)  # the trigger API's credential, sent where it belongs
            sent = json.dumps({"json": request.json, "form": form, "query": request.query}).encode()
            blobs[f"gitlab {request.method} {request.path} #{index}"] = sent + b"".join(request.files.values())
        for index, body in enumerate(_WebhookReceiver.bodies):
            blobs[f"webhook #{index}"] = body
        return blobs


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    found = []
    for name, value in CANARY.items():
        for form in {value, quote(value, safe=""), json.dumps(value)[1:-1]}:
            if form.encode() in data:
                found.append(name)
                break
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("canary"))
    try:
        for case in CASES:
            world.run(case)
        # For a failing run: every command's output, next to the project.
        (world.root / "outputs.json").write_text(json.dumps(world.outputs, indent=1))
        yield world
    finally:
        world.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_command_prints_a_secret(world, case):
    code, out, err = world.outputs[case.name]
    assert code in case.codes, f"{case.name}: exit {code}\n{out[-3000:]}\n{err[-3000:]}"
    assert leaks(out) == [], f"stdout of {case.name}:\n{out[-3000:]}"
    assert leaks(err) == [], f"stderr of {case.name}:\n{err[-3000:]}"


def test_no_secret_in_any_file_mlflow_record_or_request_body(world):
    hits = {where: found for where, blob in world.written().items() if (found := leaks(blob))}
    assert hits == {}


def test_the_canaries_really_reached_the_places_they_could_leak_from(world):
    """A test that cannot fail is a defect: the planted secrets must have been in play."""
    env_dump = next(line for line in world.outputs["train"][1].splitlines() if line.startswith("environment:"))
    assert "[MASKED]" in env_dump and "MLFLOW_TRACKING_URI" in env_dump
    notes = world.gitlab.note_list(1)
    assert len(notes) == 1 and "mlflow-ui.invalid" in notes[0]["body"]
    assert _WebhookReceiver.bodies, "the retrain conclusion should have notified the webhook"
    assert any(request.path.endswith("/trigger/pipeline") for request in world.gitlab.requests)
