"""Run the example project's pipelines under gitlab-ci-local, as GitLab would.

What stands in for what:
- GitLab runner: gitlab-ci-local (pinned in package.json) in shell-executor mode with shell isolation:
  each job runs in its own copy of the tracked files (.gitlab-ci-local/builds/<job>/) and receives only
  the artifacts and caches it declares, as on a runner. Model servers outlive their deploy job, so their
  records live in one state directory outside the copies, as a shell runner's CI/CD variable puts it.
- GitLab API: the loopback fake (tests/fakes/gitlab_server.py) on 127.0.0.1.
- MLflow: a sqlite tracking store in the workspace, or a real `mlflow server`
  on 127.0.0.1 for the HTTP tracking path.
Every server is started here and stopped by PID, even when a scenario fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "tumor-classifier"
GCL = REPO_ROOT / "node_modules" / ".bin" / "gitlab-ci-local"
VENV_BIN = Path(sys.executable).parent
FAKE_TOKEN = "glpat-e2e-fake-token-0123456789"
PROJECT_ID = "4242"
PROJECT_PATH = "demo/tumor-classifier"


def ensure_tools() -> None:
    """gitlab-ci-local from the lockfile, and rsync, which it shells out to."""
    if not GCL.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REPO_ROOT, check=True)
    if shutil.which("rsync") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "rsync"], check=False)
        if shutil.which("rsync") is None:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "rsync"], check=True)


def free_port() -> int:
    from mlci.deploy.serve import free_port as free_loopback_port

    return free_loopback_port("127.0.0.1")


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def start_service(name: str, cmd: list[str], url: str, ready_path: str, log_dir: Path, env=None, timeout=60) -> Service:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env or os.environ.copy()
    )
    service = Service(name, url, process, log_path)
    try:
        wait_http(url + ready_path, timeout=timeout, proc=process)
    except BaseException:
        service.stop()
        raise RuntimeError(f"{name} failed to start; log:\n{log_path.read_text(errors='replace')[-3000:]}") from None
    return service


def start_fake_gitlab(log_dir: Path, state_dir: Path) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "tests.fakes.gitlab_server", "--host", "127.0.0.1", "--port", str(port),
        "--state-dir", str(state_dir), "--token", FAKE_TOKEN, "--project-id", PROJECT_ID,
        "--project-path", PROJECT_PATH,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return start_service("fake-gitlab", cmd, url, "/__fake__/state", log_dir, env=env)


def start_mlflow_server(log_dir: Path, store_dir: Path) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{store_dir / 'mlflow.db'}",
        "--artifacts-destination", str(store_dir / "artifacts"),
    ]
    # No server-side job runner: it starts eight more MLflow processes that nothing here uses.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return start_service("mlflow-server", cmd, url, "/health", log_dir, env=env, timeout=120)


@dataclass
class JobResult:
    name: str
    status: str  # passed | failed | warning | manual | skipped
    seconds: float | None = None


@dataclass
class PipelineRun:
    returncode: int
    output: str
    seconds: float
    jobs: dict[str, JobResult] = field(default_factory=dict)
    first_failure_seconds: float | None = None  # since pipeline start, when the first job reported failure

    def status(self, job: str) -> str | None:
        result = self.jobs.get(job)
        return result.status if result else None

    def ran(self, job: str) -> bool:
        return job in self.jobs and self.jobs[job].status in ("passed", "failed", "warning")


# The closing summary: " PASS  [ 2.11 s] mlci-data-drift"; jobs of a child pipeline started by a
# `trigger:` job read " PASS  [ 13 s] [mlci-retrain-run] -> mlci-train" and are keyed "mlci-retrain-run/mlci-train".
_SUMMARY = re.compile(
    r"^\s*(?P<status>PASS|FAIL|WARN|MANUAL|SKIP)\s+(?:\[\s*(?P<time>[\d.]+) (?P<unit>ms|s|min)\]\s+)?"
    r"(?:\[(?P<parent>[\w.:-]+)\] -> )?(?P<job>[\w.:-]+)",
    re.MULTILINE,
)
_JOB_FAILED = re.compile(r"\sfinished in .*\bFAIL\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_gcl_output(output: str) -> dict[str, JobResult]:
    text = _ANSI.sub("", output)
    jobs: dict[str, JobResult] = {}
    for match in _SUMMARY.finditer(text):
        if match["job"] == "Avoid":  # gitlab-ci-local's own "WARN Avoid overriding ..." notice
            continue
        status = {"PASS": "passed", "FAIL": "failed", "WARN": "warning", "MANUAL": "manual", "SKIP": "skipped"}[
            match["status"]
        ]
        seconds = None
        if match["time"]:
            value = float(match["time"])
            seconds = value / 1000 if match["unit"] == "ms" else value * 60 if match["unit"] == "min" else value
        name = f"{match['parent']}/{match['job']}" if match["parent"] else match["job"]
        jobs[name] = JobResult(name, status, seconds)
    return jobs


@dataclass
class Workspace:
    """A throwaway git repo holding the example project and the rendered templates."""

    root: Path
    fake_gitlab: Service | None = None
    mlflow_server: Service | None = None
    services: list[Service] = field(default_factory=list)
    runs: list[tuple[str, PipelineRun]] = field(default_factory=list)

    @property
    def out_dir(self) -> Path:
        return self.root / "mlci-out"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_server:
            return self.mlflow_server.url
        return f"sqlite:///{self.root / '.mlci' / 'mlflow.db'}"

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def base_variables(self) -> dict[str, str]:
        variables = {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "CI_PROJECT_ID": PROJECT_ID,
            "CI_PROJECT_PATH": PROJECT_PATH,
            "CI_DEFAULT_BRANCH": "main",
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
            "MLCI_OUT_DIR": "mlci-out",
            # Model servers outlive the job that started them; their state lives outside every job's copy,
            # as a shell runner's CI/CD variable would put it.
            "MLCI_DEPLOY_STATE_DIR": str(self.root / ".mlci" / "serve"),
            # The mlci on PATH (this checkout) runs every job, as a CI/CD variable would switch a real
            # pipeline; one scenario overrides it to install from a package index instead.
            "MLCI_INSTALL": "preinstalled",
            "GITLAB_USER_LOGIN": "demo-user",
            "PYTHONUNBUFFERED": "1",
            # No internet here: MLflow's usage telemetry would stall every job.
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
        if self.fake_gitlab:
            variables["CI_SERVER_URL"] = self.fake_gitlab.url
            variables["MLCI_GITLAB_TOKEN"] = FAKE_TOKEN
        return variables

    def gcl_command(
        self, variables: dict[str, str] | None = None, *, manual: list[str] | None = None, file: str | None = None,
        isolated: bool = True,
    ) -> list[str]:
        merged = {**self.base_variables(), **(variables or {})}
        cmd = [str(GCL), "--cwd", ".", "--force-shell-executor", "--no-color", "--timestamps"]
        if isolated:
            cmd.append("--shell-isolation")
        predefined = sorted(k for k in merged if k.startswith(("CI_", "GITLAB_")))
        if predefined:
            cmd += ["--ignore-predefined-vars", ",".join(predefined)]
        for key, value in merged.items():
            cmd += ["--variable", f"{key}={value}"]
        for job in manual or []:
            cmd += ["--manual", job]
        if file:
            cmd += ["--file", file]
        return cmd

    def preview(self, variables: dict[str, str] | None = None) -> dict:
        """The merged pipeline as gitlab-ci-local builds it (includes, inputs, extends resolved)."""
        import yaml

        done = subprocess.run(
            [*self.gcl_command(variables), "--preview"], cwd=self.root, check=True, capture_output=True, text=True
        )
        # Notices may precede the document; the merged YAML starts at its '---' line.
        text = done.stdout
        start = text.find("---\n")
        return yaml.safe_load(text[start:] if start >= 0 else text)

    def run_pipeline(
        self,
        label: str,
        variables: dict[str, str] | None = None,
        *,
        jobs: list[str] | None = None,
        manual: list[str] | None = None,
        file: str | None = None,
        extra_args: list[str] | None = None,
        timeout: float = 900,
        echo: bool = False,
        isolated: bool = True,
    ) -> PipelineRun:
        cmd = self.gcl_command(variables, manual=manual, file=file, isolated=isolated)
        cmd += list(extra_args or [])
        cmd += list(jobs or [])
        env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "FORCE_COLOR": "0"}
        start = time.monotonic()
        # Stream the output so each line's arrival time is known (first-failure latency).
        proc = subprocess.Popen(
            cmd, cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: list[tuple[float, str]] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - start, line))
            if echo:
                print(line, end="", flush=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        output = "".join(line for _, line in lines)
        first_failure = next((t for t, line in lines if _JOB_FAILED.search(_ANSI.sub("", line))), None)
        run = PipelineRun(code, output, time.monotonic() - start, parse_gcl_output(output), first_failure)
        (self.root / f".pipeline-{len(self.runs):02d}-{label}.log").write_text(output)
        self.runs.append((label, run))
        return run

    def gitlab_api(self, method: str, path: str, form: dict[str, str] | None = None) -> dict:
        """Call the fake GitLab's REST API the way a user or GitLab itself would."""
        assert self.fake_gitlab is not None
        data = urllib.parse.urlencode(form or {}).encode() if form is not None else None
        request = urllib.request.Request(
            f"{self.fake_gitlab.url}/api/v4{path}", data=data, method=method,
            headers={"PRIVATE-TOKEN": FAKE_TOKEN},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def open_merge_request(self, source_branch: str, title: str) -> str:
        """Push-equivalent for the fake: the branch and its MR exist before the MR pipeline runs."""
        self.gitlab_api("POST", f"/projects/{PROJECT_ID}/repository/branches", {"branch": source_branch, "ref": "main"})
        mr = self.gitlab_api("POST", f"/projects/{PROJECT_ID}/merge_requests", {
            "source_branch": source_branch, "target_branch": "main", "title": title,
        })
        return str(mr["iid"])

    def merge_request_variables(self, iid: str, source_branch: str) -> dict[str, str]:
        return {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": iid,
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": source_branch,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_COMMIT_REF_NAME": source_branch,
            "CI_COMMIT_BRANCH": "",
        }

    def fake_state(self) -> dict:
        assert self.fake_gitlab is not None
        with urllib.request.urlopen(self.fake_gitlab.url + "/__fake__/state", timeout=10) as response:
            return json.loads(response.read())

    def timing_table(self) -> str:
        rows = ["pipeline            job                           status    seconds"]
        for label, run in self.runs:
            for job in run.jobs.values():
                seconds = f"{job.seconds:7.2f}" if job.seconds is not None else "      -"
                rows.append(f"{label:<19} {job.name:<29} {job.status:<9} {seconds}")
            rows.append(f"{label:<19} {'(whole pipeline)':<29} {'rc=' + str(run.returncode):<9} {run.seconds:7.2f}")
        return "\n".join(rows)

    def close(self, *, keep_model_servers: bool = False) -> None:
        for service in reversed(self.services):
            service.stop()
        if not keep_model_servers:
            stop_model_servers(self.root)


def stop_model_servers(root: Path) -> None:
    """Stop `mlflow models serve` processes that deploy jobs left running in this workspace.

    Goes through mlci's own stop, which checks the PID still belongs to the recorded server.
    """
    from mlci.deploy.serve import ServerState, stop_server

    state_dir = root / ".mlci" / "serve"
    for state_file in state_dir.glob("*.json") if state_dir.exists() else []:
        with contextlib.suppress(Exception):
            stop_server(ServerState.from_json(json.loads(state_file.read_text())), grace=5)


def make_workspace(base: Path | None = None) -> Workspace:
    """Copy the example into a fresh git repo with a fake origin, the way a user's project looks."""
    root = Path(tempfile.mkdtemp(prefix="mlci-e2e-", dir=base))
    skip = shutil.ignore_patterns("__pycache__", "mlci-out", ".mlci")
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=skip)
    shutil.copytree(REPO_ROOT / "ci_templates", root / "ci_templates")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "config", "user.email", "ci@example.com"], cwd=root, check=True)
    subprocess.run(["git", "config", "user.name", "mlci e2e"], cwd=root, check=True)
    origin = f"git@gitlab.example.com:{PROJECT_PATH}.git"
    subprocess.run(["git", "remote", "add", "origin", origin], cwd=root, check=True)
    workspace = Workspace(root=root)
    workspace.commit("example project")
    return workspace


@contextlib.contextmanager
def workspace_with_services(
    base: Path | None = None, *, mlflow_server: bool = False, fake_gitlab: bool = True,
    keep_model_servers: bool = False,
) -> Iterator[Workspace]:
    ensure_tools()
    workspace = make_workspace(base)
    log_dir = workspace.root / ".service-logs"
    log_dir.mkdir()
    try:
        if fake_gitlab:
            workspace.fake_gitlab = start_fake_gitlab(log_dir, workspace.root / ".fake-gitlab")
            workspace.services.append(workspace.fake_gitlab)
        if mlflow_server:
            workspace.mlflow_server = start_mlflow_server(log_dir, workspace.root / ".mlflow-server")
            workspace.services.append(workspace.mlflow_server)
        yield workspace
    finally:
        workspace.close(keep_model_servers=keep_model_servers)
        timings_dir = os.environ.get("MLCI_E2E_TIMINGS_DIR")
        if timings_dir and workspace.runs and Path(timings_dir).is_dir():
            table_path = Path(timings_dir) / f"{workspace.runs[0][0]}--{workspace.root.name}.txt"
            table_path.write_text(workspace.timing_table() + "\n")
        if base is None:  # a private temp dir; callers that pass `base` keep theirs for inspection
            shutil.rmtree(workspace.root, ignore_errors=True)
