"""`mlci train` against a real sqlite MLflow store: a real sklearn run, the run cache, failures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.train.conftest import HERE, mlci_process_env

CI_VARS = {
    "CI_PROJECT_PATH": "ml/churn",
    "CI_PROJECT_NAME": "churn",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "CI_COMMIT_REF_NAME": "feature/better-model",
    "CI_PIPELINE_ID": "4242",
    "CI_PIPELINE_URL": "https://gitlab.example.com/ml/churn/-/pipelines/4242",
    "CI_JOB_ID": "99001",
    "CI_JOB_NAME": "mlci-train",
    "CI_JOB_URL": "https://gitlab.example.com/ml/churn/-/jobs/99001",
    "CI_MERGE_REQUEST_IID": "17",
    "CI_RUNNER_DESCRIPTION": "gpu-runner-a100",
    "CI_JOB_IMAGE": "python:3.11-slim",
}

# A training command that costs nothing: the cache tests are about mlci, not the model.
QUICK = [sys.executable, "-c", "print('quick training done')"]


def write_iris(project) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    lines += [",".join(f"{v:g}" for v in row) + f",{label}" for row, label in zip(iris.data, iris.target, strict=True)]
    project.write("data/iris.csv", "\n".join(lines) + "\n")


def quick_project(project, params: str = "{alpha: 1}") -> None:
    project.write("data/train.csv", "x,y\n1,2\n3,4\n5,6\n")
    project.write("src/model.py", "WEIGHTS = 1\n")
    project.config(f"""\
        train:
          code-paths: [src]
          data: [data/train.csv]
          params: {params}
          telemetry-interval: 0.2
        """)


def test_sklearn_training_run_records_params_metrics_lineage_data_and_dotenv(project, run_cli, monkeypatch):
    write_iris(project)
    shutil.copy(HERE / "scripts" / "train_iris.py", project.root / "train.py")
    project.config(f"""\
        project:
          name: churn
        train:
          command: ["{sys.executable}", train.py]
          data: [data/iris.csv]
          params: {{C: 0.5, max_iter: 300}}
          telemetry-interval: 0.5
        """)
    for key, value in CI_VARS.items():
        monkeypatch.setenv(key, value)

    code, out, err = run_cli("train")

    assert code == 0, err
    assert "training in run" in out and "done" in out  # the child's output was streamed
    env = project.dotenv()
    run_id = env["MLCI_RUN_ID"]
    assert env["MLCI_MODEL_URI"] == f"runs:/{run_id}/model"
    assert env["MLCI_CACHE_HIT"] == "false"
    client = project.client()
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "ml/churn"  # mlflow.experiment defaults to CI_PROJECT_PATH
    assert env["MLCI_EXPERIMENT_ID"] == run.info.experiment_id
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "mlci-train"
    assert run.data.params == {"C": "0.5", "max_iter": "300"}
    assert run.data.metrics["accuracy"] > 0.8
    assert "f1_macro" in run.data.metrics
    assert run.data.metrics["system/cpu_utilization_percent"] >= 0
    tags = run.data.tags
    assert tags["mlci.gitlab.pipeline_id"] == "4242"
    assert tags["mlci.gitlab.commit"] == CI_VARS["CI_COMMIT_SHA"]
    assert tags["mlci.gitlab.ref"] == "feature/better-model"
    assert tags["mlci.gitlab.job_url"] == CI_VARS["CI_JOB_URL"]
    assert tags["mlci.gitlab.mr_iid"] == "17"
    assert tags["mlci.gitlab.runner"] == "gpu-runner-a100"
    assert tags["gitlab.CI_JOB_ID"] == "99001"
    assert tags["mlci.image"] == "python:3.11-slim"
    assert tags["mlci.gpu"] == "none"
    assert len(tags["mlci.fingerprint"]) == 64
    assert tags["mlci.data.data/iris.csv.rows"] == "150"

    iris_bytes = (project.root / "data" / "iris.csv").read_bytes()
    import hashlib

    assert tags["mlci.data.data/iris.csv.sha256"] == hashlib.sha256(iris_bytes).hexdigest()
    datasets = run.inputs.dataset_inputs
    assert [d.dataset.name for d in datasets] == ["data/iris.csv"]
    assert json.loads(datasets[0].dataset.profile)["num_rows"] == 150
    artifacts = {a.path for a in client.list_artifacts(run_id, "mlci-data/data")}
    assert artifacts == {"mlci-data/data/iris.csv"}
    log_file = client.download_artifacts(run_id, "mlci-logs/train.log", str(project.root / "dl"))
    assert "done" in Path(log_file).read_text()

    # The exported model URI is usable by the later jobs.
    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)  # what the gate/deploy jobs see
    model = mlflow.pyfunc.load_model(env["MLCI_MODEL_URI"])
    assert list(model.predict([[5.1, 3.5, 1.4, 0.2]])) == [0]

    summary = project.summary()
    assert summary["version"] == 1
    assert summary["status"] == "FINISHED" and summary["cache_hit"] is False
    assert summary["fingerprint"] == tags["mlci.fingerprint"]
    assert summary["data"][0]["rows"] == 150
    assert summary["telemetry"]["gpu"]["available"] is False
    assert summary["telemetry"]["cpu"]["peak_percent"] is not None
    # One span per name: the command's run time everywhere it is called duration, the whole step beside it.
    assert summary["duration_seconds"] == round(float(tags["mlci.duration_seconds"]), 3)
    assert summary["step_seconds"] >= summary["duration_seconds"]
    assert summary["metrics"]["accuracy"] == run.data.metrics["accuracy"]
    # The job log ends with the run's final metrics and where to look at them.
    assert f"final metrics of run {run_id}:" in out
    table = out.split("final metrics")[1]
    assert re.search(r"^  accuracy +[0-9.]+$", table, re.M) and "system/" not in table, table
    assert "see them in: mlflow ui --backend-store-uri sqlite:" in out and f"run {run_id})" in out


def test_second_identical_run_is_a_cache_hit_and_reuses_the_run(project, run_cli):
    quick_project(project)
    code, _, err = run_cli("train", "--", *QUICK)
    assert code == 0, err
    first = project.dotenv()

    code, out, err = run_cli("train", "--", *QUICK)

    assert code == 0, err
    assert "cache hit" in out
    assert "quick training done" not in out  # the command did not run
    second = project.dotenv()
    assert second["MLCI_RUN_ID"] == first["MLCI_RUN_ID"]
    assert second["MLCI_MODEL_URI"] == first["MLCI_MODEL_URI"]
    assert second["MLCI_CACHE_HIT"] == "true"
    assert len(project.runs()) == 1
    assert project.summary()["cache_hit"] is True


@pytest.mark.parametrize("change", ["param", "data", "code", "command"])
def test_a_changed_input_is_a_cache_miss(project, run_cli, change):
    quick_project(project)
    assert run_cli("train", "--", *QUICK)[0] == 0
    first = project.dotenv()["MLCI_RUN_ID"]
    command = QUICK
    if change == "param":
        quick_project(project, params="{alpha: 2}")
    elif change == "data":
        project.write("data/train.csv", "x,y\n1,2\n3,4\n5,7\n")
    elif change == "code":
        project.write("src/model.py", "WEIGHTS = 2\n")
    else:
        command = [*QUICK[:2], "print('other')"]

    code, out, err = run_cli("train", "--", *command)

    assert code == 0, err
    assert "cache hit" not in out
    assert project.dotenv()["MLCI_RUN_ID"] != first
    assert project.dotenv()["MLCI_CACHE_HIT"] == "false"
    assert len(project.runs()) == 2


def test_no_cache_flag_and_failed_runs_never_count_as_hits(project, run_cli):
    quick_project(project)
    failing = [sys.executable, "-c", "import sys; print('boom'); sys.exit(7)"]

    code, _, err = run_cli("train", "--", *failing)
    assert code == 7  # the child's exit code, not mlci's
    failed_id = project.dotenv()["MLCI_RUN_ID"]
    assert project.client().get_run(failed_id).info.status == "FAILED"
    assert project.summary()["status"] == "FAILED"
    assert "FAILED (exit code 7)" in err

    code, out, _ = run_cli("train", "--", *failing)
    assert code == 7 and "cache hit" not in out  # a FAILED run is never re-used

    assert run_cli("train", "--", *QUICK)[0] == 0
    code, out, _ = run_cli("train", "--no-cache", "--", *QUICK)
    assert code == 0 and "cache hit" not in out and "quick training done" in out
    assert len(project.runs()) == 4


def test_max_runtime_kills_the_command_and_keeps_the_partial_run_as_killed(project, run_cli):
    quick_project(project)
    project.config("train:\n  kill-grace-seconds: 0.5\n")
    # Ignores SIGTERM, so mlci has to escalate to SIGKILL after the grace period.
    stubborn = [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('epoch 1 done', flush=True); time.sleep(60)"]

    started = time.monotonic()
    code, out, err = run_cli("train", "--max-runtime", "1", "--", *stubborn)
    elapsed = time.monotonic() - started

    assert code == 124
    assert "KILLED (exit code 124): max-runtime of 1s exceeded" in err
    assert elapsed < 20
    assert "epoch 1 done" in out
    assert "max-runtime of 1s exceeded" in out and "sending SIGKILL" in out
    run = project.client().get_run(project.dotenv()["MLCI_RUN_ID"])
    assert run.info.status == "KILLED"
    assert run.data.tags["mlci.killed_reason"] == "max-runtime of 1s exceeded"
    log_file = project.client().download_artifacts(run.info.run_id, "mlci-logs/train.log", str(project.root / "dl"))
    assert "epoch 1 done" in Path(log_file).read_text()  # the log survives the kill
    summary = project.summary()
    assert summary["status"] == "KILLED" and summary["exit_code"] == 124


def test_matrix_variables_become_params_and_reach_the_command(project, run_cli, monkeypatch):
    quick_project(project, params="{alpha: 1, depth: 3}")
    project.config("""\
        train:
          params: {alpha: 1, depth: 3}
          matrix-variables: [LEARNING_RATE]
        """)
    monkeypatch.setenv("MLCI_PARAM_ALPHA", "0.25")
    monkeypatch.setenv("LEARNING_RATE", "0.01")
    show = [sys.executable, "-c", "import os; print('PARAMS', os.environ['MLCI_PARAMS_JSON'])"]

    code, out, err = run_cli("train", "--", *show)

    assert code == 0, err
    assert 'PARAMS {"LEARNING_RATE": "0.01", "alpha": "0.25", "depth": 3}' in out
    run = project.client().get_run(project.dotenv()["MLCI_RUN_ID"])
    assert run.data.params == {"alpha": "0.25", "depth": "3", "LEARNING_RATE": "0.01"}


def test_the_train_templates_default_sweep_records_each_jobs_matrix_values_as_params(project, run_cli, monkeypatch):
    """The `matrix` input's default, expanded as GitLab's parallel:matrix would, with no mlci.yml help."""
    import itertools

    from mlci.generate.stages import load_manifests

    quick_project(project)
    matrix = load_manifests().by_name("train").input("matrix").default
    jobs = [dict(zip(entry, combo, strict=True))
            for entry in matrix
            for combo in itertools.product(*([v] if isinstance(v, str) else v for v in entry.values()))]
    assert len(jobs) == 3

    recorded = []
    for variables in jobs:
        with monkeypatch.context() as job:
            for name, value in variables.items():
                job.setenv(name, value)
            code, _, err = run_cli("train", "--", *QUICK)
        assert code == 0, err
        params = project.client().get_run(project.dotenv()["MLCI_RUN_ID"]).data.params
        recorded.append({k: v for k, v in params.items() if k != "alpha"})
    assert recorded == [{"seed": "1"}, {"seed": "2"}, {"seed": "3"}]


def test_child_sees_the_run_and_an_absolute_tracking_uri(project, run_cli):
    quick_project(project)
    show = [sys.executable, "-c",
            "import os; print('|'.join(os.environ[k] for k in "
            "('MLFLOW_RUN_ID', 'MLFLOW_TRACKING_URI', 'MLFLOW_EXPERIMENT_ID')))"]

    code, out, err = run_cli("train", "--", *show)

    assert code == 0, err
    env = project.dotenv()
    assert f"{env['MLCI_RUN_ID']}|sqlite:///{project.db}|{env['MLCI_EXPERIMENT_ID']}" in out


def test_cache_hit_process_does_not_import_mlflow_and_is_fast(project, run_cli):
    quick_project(project)
    assert run_cli("train", "--", *QUICK)[0] == 0
    probe = ("import sys, time; from mlci.cli import main; started = time.monotonic(); "
             f"code = main(['train', '--', *{QUICK!r}]); "
             "print('MLFLOW_IMPORTED' if 'mlflow' in sys.modules else 'NO_MLFLOW', time.monotonic() - started); "
             "sys.exit(code)")

    proc = subprocess.run([sys.executable, "-c", probe], cwd=project.root, env=mlci_process_env(),
                          capture_output=True, text=True, timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert "cache hit" in proc.stdout
    marker, seconds = proc.stdout.strip().splitlines()[-1].split()
    assert marker == "NO_MLFLOW"
    assert float(seconds) < 3.0  # the target for a hit as a whole process; typically ~0.2 s


def test_missing_data_and_code_paths_are_config_errors_with_locations(project, run_cli):
    project.config("""\
        train:
          code-paths: [src]
          data:
            - data/nothing-*.csv
        """)

    code, _, err = run_cli("train", "--", *QUICK)

    assert code == 2
    assert "mlci.yml:2:16: code path 'src' does not exist" in err
    assert "mlci.yml:4:7: data path 'data/nothing-*.csv' matches no file" in err
    assert not project.out.exists()


def test_no_command_and_unknown_program_are_usage_errors(project, run_cli):
    quick_project(project)
    code, _, err = run_cli("train")
    assert code == 2 and "no training command" in err

    code, _, err = run_cli("train", "--", "definitely-not-a-trainer-xyz", "--epochs", "3")
    assert code == 2 and "training command not found: 'definitely-not-a-trainer-xyz'" in err
    assert project.runs() == []


def test_unknown_train_setting_is_reported_with_did_you_mean(project, run_cli):
    project.config("train:\n  max-runtme: 10\n")
    code, _, err = run_cli("train", "--", *QUICK)
    assert code == 2
    assert "mlci.yml:2:3: unknown key 'max-runtme'; did you mean 'max-runtime'?" in err


def test_unreachable_tracking_server_is_exit_3_naming_the_url(project, run_cli, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    quick_project(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")

    code, _, err = run_cli("train", "--", *QUICK)

    assert code == 3
    assert f"MLflow http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name" in err
    assert "hint: check mlflow.tracking-uri" in err


def test_data_artifacts_respect_the_size_cap_and_can_be_switched_off(project, run_cli):
    project.write("data/small.csv", "x\n1\n")
    project.write("data/big.csv", "x\n" + "123456789\n" * 2000)  # about 20 kB
    project.config("""\
        train:
          data: [data/small.csv, data/big.csv]
          data-artifacts-max-mb: 0.01
        """)
    code, _, err = run_cli("train", "--", *QUICK)
    assert code == 0, err
    assert "not logged: data/big.csv" in err
    client = project.client()
    run_id = project.dotenv()["MLCI_RUN_ID"]
    assert {a.path for a in client.list_artifacts(run_id, "mlci-data/data")} == {"mlci-data/data/small.csv"}
    assert client.get_run(run_id).data.tags["mlci.data_artifacts"] == "partial"
    assert client.get_run(run_id).data.tags["mlci.data.data/big.csv.rows"] == "2000"  # still hashed and counted

    project.config("train:\n  data: [data/small.csv]\n  log-data-artifacts: false\n")
    assert run_cli("train", "--", *QUICK)[0] == 0
    run_id = project.dotenv()["MLCI_RUN_ID"]
    assert client.list_artifacts(run_id, "mlci-data") == []
    assert client.get_run(run_id).data.tags["mlci.data_artifacts"] == "off"


def test_a_param_name_mlflow_would_reject_is_a_located_config_error(project, run_cli):
    project.config('train:\n  params:\n    lr: 0.1\n    "drop%out": 0.2\n')
    code, _, err = run_cli("train", "--", *QUICK)
    assert code == 2
    assert "mlci.yml:4:5: param name 'drop%out' is not accepted by MLflow" in err
    assert project.runs() == []
