"""`mlci tune` on a real PostgreSQL (Debian's server on 127.0.0.1): errors without the password, and a
job killed mid-study whose retry resumes it with no trial lost or run twice."""

from __future__ import annotations

import json
import signal
import threading
import time

import psutil
import pytest

from tests.servers.postgres import PASSWORD, free_port
from tests.tune.conftest import tune_config

pytestmark = [pytest.mark.xdist_group("postgres")]


def test_an_unreachable_database_exits_3_naming_it_without_the_password(project, run_cli, monkeypatch):
    project.config(tune_config())
    secret = "Sup3r-S3cret-pw"
    port = free_port()
    monkeypatch.setenv("MLCI_TUNE_STORAGE", f"postgresql://mlci:{secret}@127.0.0.1:{port}/optuna")
    code, out, err = run_cli("tune")
    assert code == 3, err
    assert f"127.0.0.1:{port}" in err and "Connection refused" in err
    assert "MLCI_TUNE_STORAGE" in err, "the hint says which variable to fix"
    assert secret not in out + err
    assert not project.runs("tune-demo"), "nothing was started"


@pytest.mark.slow
def test_a_wrong_password_exits_3_and_prints_neither_password(project, run_cli, monkeypatch, postgres_server):
    url = postgres_server.create_database("tune_badpw")
    wrong = "not-the-real-pw-123"
    project.config(tune_config(storage=url.replace(PASSWORD, wrong)))
    code, out, err = run_cli("tune")
    assert code == 3, err
    assert "password authentication failed" in err
    assert wrong not in out + err and PASSWORD not in out + err


class Output:
    """A child's stdout, collected line by line on a thread."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not seen within {timeout}s:\n{''.join(self.lines)[-3000:]}")


def kill_tree(pid: int) -> None:
    """What a lost runner does to a job: everything stops at once, no cleanup."""
    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        proc.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)


@pytest.mark.slow
def test_a_killed_job_retried_resumes_the_study_with_no_trial_lost_or_duplicated(
        project, start_mlci, postgres_server):
    import optuna

    from tests.tune.conftest import mlci_process_env

    url = postgres_server.create_database("tune_resume")
    project.config(tune_config(n_trials=3))
    job = {"CI_PROJECT_PATH": "demo/tune", "CI_COMMIT_REF_SLUG": "main", "CI_PIPELINE_ID": "77",
           "CI_JOB_NAME": "mlci-train-tune 1/1", "CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "1", "MLCI_TUNE_STORAGE": url}

    first = start_mlci("tune", cwd=project.root, env=mlci_process_env({**job, "CI_JOB_ID": "501", "OBJ_HANG": "1"}))
    first_out = Output(first.stdout)
    first_out.wait_for("hanging", timeout=600)
    kill_tree(first.pid)

    retry = start_mlci("tune", cwd=project.root, env=mlci_process_env({**job, "CI_JOB_ID": "502"}))
    out, err = retry.communicate(timeout=900)
    assert retry.returncode == 0, err[-3000:]
    assert "waiting up to" in out and "queued again" in err

    storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://"))
    study = optuna.load_study(study_name="demo/tune:main:77", storage=storage)
    trials = study.get_trials()
    lost = [t for t in trials if t.state.name == "FAIL"]
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(lost) == 1 and lost[0].number == 0
    assert len(done) == 3, "the budget of 3 evaluations is met exactly"
    (again,) = [t for t in done if t.system_attrs.get("failed_trial") == 0]
    assert again.params == lost[0].params, "the lost trial is retried with its own parameters"
    assert len({json.dumps(t.params, sort_keys=True) for t in done}) == 3, "no evaluation ran twice"

    doc = json.loads((project.out / "tune.json").read_text())
    assert doc["counts"]["complete"] == 3 and doc["counts"]["retried"] == 1 and doc["counts"]["evaluations"] == 3
    runs = {r.info.run_id: r for r in project.runs("demo/tune")}  # mlflow.experiment defaults to CI_PROJECT_PATH
    assert len(runs) == 1 + 4, "the parent, the lost trial's run and three finished trials"
    killed = [r for r in runs.values() if r.data.tags.get("mlci.tune.trial") == "0" and r.info.status == "KILLED"]
    assert killed and "lost with its job" in killed[0].data.tags["mlci.killed_reason"], err[-3000:]
    assert not [r for r in runs.values() if r.info.status == "RUNNING"], "no run is left RUNNING"
    for text in (out, err, "".join(first_out.lines)):
        assert PASSWORD not in text


def _open_fresh_storage(url: str) -> str:
    from mlci.adapters.optuna_storage import open_storage
    from mlci.tune.settings import Storage, normalize_db_url

    try:
        open_storage(Storage("rdb", url=normalize_db_url(url)), heartbeat_seconds=60, grace_seconds=120,
                     stale_callback=None)
        return "ok"
    except Exception as exc:  # reported to the test, which shows it
        return f"{type(exc).__name__}: {exc}"


def test_parallel_jobs_opening_a_fresh_database_at_once_all_get_the_storage(postgres_server):
    """`parallel: N` jobs start together; the ones that lose the race to create Optuna's tables must join."""
    from concurrent.futures import ProcessPoolExecutor

    url = postgres_server.create_database("tune_schema_race")
    with ProcessPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(_open_fresh_storage, [url] * 6))
    assert outcomes == ["ok"] * 6
