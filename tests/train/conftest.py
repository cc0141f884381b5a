"""Fixtures for `mlci train` / `mlci train-select`: a project directory with a real sqlite MLflow store.

Creating an MLflow sqlite store runs its migrations (several seconds), so one
migrated store is made per test session (per xdist worker) and copied into
each test's project.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FAKE_NVML_DIR = HERE / "fake_nvml"
REPO_ROOT = HERE.parent.parent


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """One migrated store for the whole run, shared by the xdist workers through a lock file."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's basetemp is popen-gwN inside this run's directory; without it, basetemp is that run's.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = shared / "mlci-train-store" / "mlflow.db"
    path.parent.mkdir(exist_ok=True)
    with open(shared / "mlci-train-store.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            from mlflow import MlflowClient

            building = path.with_suffix(".building")
            MlflowClient(tracking_uri=f"sqlite:///{building}").search_experiments()
            building.rename(path)
    return path


@dataclass
class Project:
    root: Path
    db: Path

    @property
    def out(self) -> Path:
        return self.root / "mlci-out"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.db}"

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def config(self, text: str) -> Path:
        return self.write("mlci.yml", text)

    def dotenv(self, name: str = "train.env") -> dict[str, str]:
        from mlci.outputs.dotenv import read_dotenv

        return read_dotenv(self.out / name)

    def summary(self, name: str = "train.json") -> dict:
        import json

        return json.loads((self.out / name).read_text())

    def runs(self, experiment: str = "mlci"):
        client = self.client()
        found = client.get_experiment_by_name(experiment)
        return client.search_runs([found.experiment_id]) if found else []


@pytest.fixture
def project(tmp_path, clean_env, migrated_store, monkeypatch) -> Project:
    """An empty project (not a git repo) with a migrated MLflow store at the default place, as cwd."""
    root = tmp_path / "project"
    (root / ".mlci").mkdir(parents=True)
    db = root / ".mlci" / "mlflow.db"
    shutil.copyfile(migrated_store, db)
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    # The fake NVML stays out unless a test puts it in; the real one finds no driver here.
    return Project(root=root, db=db)


def mlci_process_env(extra: dict[str, str] | None = None, *, fake_nvml: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MLCI_", "MLFLOW_", "GITLAB_", "FAKE_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    paths = [str(REPO_ROOT)]
    if fake_nvml:
        paths.insert(0, str(FAKE_NVML_DIR))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


@pytest.fixture
def start_mlci():
    """Start `python -m mlci ...` as its own process; killed at teardown if still running."""
    started: list[subprocess.Popen] = []

    def start(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlci", *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def fake_nvml(monkeypatch):
    """Install the fake `pynvml` for in-process runs; returns a setter for its FAKE_NVML_* knobs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pynvml", FAKE_NVML_DIR / "pynvml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "pynvml", module)

    def configure(**knobs: str) -> None:
        for key, value in knobs.items():
            monkeypatch.setenv(f"FAKE_NVML_{key.upper()}", value)

    return configure
