import os
import sys
from pathlib import Path

import pytest

from mlci.adapters.gitlab_ci_local import job_shell_environment

pytest_plugins = ["tests.fakes.plugin"]

# MLflow 3 sends usage telemetry; with no internet each event stalls until it
# times out. Switch it off for the test process and every child it starts.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# `mlflow server` would start a job runner and seven huey worker processes (each importing MLflow) for
# server-side jobs no test uses: a large share of the suite's CPU on a 2-core machine.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
# A job under test that installs mlci must install into its own virtualenv, never the machine's Python.
os.environ.setdefault("PIP_REQUIRE_VIRTUALENV", "true")
# gitlab-ci-local's job shells would source ~/.bashrc (and its pyenv shims) when the suite runs outside an
# interactive shell; every test that starts gitlab-ci-local passes this environment on.
os.environ.update(job_shell_environment(dict(os.environ)))

REPO_ROOT = Path(__file__).resolve().parent.parent


TIMINGS_ENV = "MLCI_E2E_TIMINGS_DIR"


def pytest_configure(config):
    # The end-to-end harness writes each pipeline's job timing table here; xdist workers inherit the
    # variable from the controller, which prints every table in the terminal summary.
    if not hasattr(config, "workerinput") and TIMINGS_ENV not in os.environ:
        import tempfile

        os.environ[TIMINGS_ENV] = tempfile.mkdtemp(prefix="mlci-e2e-timings-")


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput"):
        return
    directory = Path(os.environ.get(TIMINGS_ENV, ""))
    tables = sorted(directory.glob("*.txt")) if directory.is_dir() else []
    if tables:
        terminalreporter.section("end-to-end pipelines: job timings")
        for table in tables:
            terminalreporter.write_line(f"[{table.stem}]")
            terminalreporter.write_line(table.read_text().rstrip())


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden", action="store_true", default=False,
        help="rewrite golden files from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def clean_env(monkeypatch):
    """No CI_*, MLCI_* or MLFLOW_* variables from the machine leak into a test."""
    for name in list(os.environ):
        if name.startswith(("CI_", "MLCI_", "MLFLOW_", "GITLAB_")):
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def run_cli(capsys):
    """Run `mlci ARGS` in-process; returns (exit_code, stdout, stderr)."""
    from mlci.cli import main

    def _run(*args: str):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def mlci_exe() -> list[str]:
    """Command prefix to run mlci as a separate process with this interpreter."""
    return [sys.executable, "-m", "mlci"]


@pytest.fixture(autouse=True)
def _forget_mlflow_global_uris():
    """`mlflow.set_tracking_uri()` in one test would outrank MLFLOW_TRACKING_URI in every later test of the
    same worker (a model loaded from the wrong store); each test starts from the environment again."""
    yield
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri = None
        registry_utils._registry_uri = None


def pytest_xdist_make_scheduler(config, log):
    """`-n 2 --dist loadgroup` (make test): whole modules or groups per worker, long ones first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.scheduling import ModuleOrGroupScheduling

    return ModuleOrGroupScheduling(config, log)
