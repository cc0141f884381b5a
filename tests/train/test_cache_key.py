"""The run-cache key covers what decides the model and nothing else.

Each class of input is hunted as a whole: every kind of change that cannot matter (outputs, logs,
stores, docs, CI files, tests, other mlci.yml sections, runner and system variables, secrets) keeps
the key; every kind that can (code, declared files, environment a person set) changes it, and a run
that would be re-used but for its environment is a miss that names the variable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlci.train.environment import user_environment
from mlci.train.sources import hash_code_paths


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


MLCI_YML = """\
    model: {name: diabetes}
    train:
      command: python train.py
      params: {alpha: 1.0}
    gate:
      rules: [{metric: rmse, max: 60}]
    """


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "train.py").write_text("import os\nprint(os.environ.get('ALPHA'))\n")
    (root / "src" / "features.py").write_text("COLUMNS = ['bmi']\n")
    (root / "requirements.txt").write_text("scikit-learn==1.5\n")
    (root / "README.md").write_text("# diabetes\n")
    (root / "mlci.yml").write_text(textwrap.dedent(MLCI_YML))
    (root / ".gitignore").write_text("mlci-out/\n.mlci/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def files(repo: Path, paths=(".",)) -> dict[str, str]:
    return hash_code_paths(list(paths), repo, exclude=[repo / "mlci-out", repo / ".mlci", repo / "mlci.yml"]).files


def commit(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "change", "--allow-empty")


IRRELEVANT_CHANGES = {
    "readme edited": lambda r: (r / "README.md").write_text("# diabetes, better docs\n"),
    "docs page added": lambda r: (r / "docs").mkdir() or (r / "docs" / "usage.txt").write_text("how to\n"),
    "gitignore edited": lambda r: (r / ".gitignore").write_text("mlci-out/\n.mlci/\n*.log\n"),
    "ci file added": lambda r: (r / ".gitlab-ci.yml").write_text("include: [{local: ci_templates/mlci-all.yml}]\n"),
    "test added": lambda r: (r / "tests").mkdir() or (r / "tests" / "test_features.py").write_text("def test(): 1\n"),
    "test module next to code": lambda r: (r / "src" / "test_features.py").write_text("def test(): 1\n"),
    "changelog": lambda r: (r / "CHANGELOG.md").write_text("## 1.1\n"),
    "license": lambda r: (r / "LICENSE").write_text("MIT\n"),
    "gate section of mlci.yml": lambda r: (r / "mlci.yml").write_text(
        textwrap.dedent(MLCI_YML).replace("max: 60", "max: 55")),
}
RELEVANT_CHANGES = {
    "training script": lambda r: (r / "train.py").write_text("print('v2')\n"),
    "module it imports": lambda r: (r / "src" / "features.py").write_text("COLUMNS = ['bmi', 'bp']\n"),
    "requirements": lambda r: (r / "requirements.txt").write_text("scikit-learn==1.6\n"),
    "new tracked module": lambda r: (r / "src" / "extra.py").write_text("X = 1\n"),
    "tracked params file": lambda r: (r / "params.yaml").write_text("alpha: 0.1\n"),
}


@pytest.mark.parametrize("committed", [False, True], ids=["uncommitted", "committed"])
@pytest.mark.parametrize("change", IRRELEVANT_CHANGES, ids=list(IRRELEVANT_CHANGES))
def test_changes_that_cannot_change_the_model_keep_the_key(repo, change, committed):
    before = files(repo)
    IRRELEVANT_CHANGES[change](repo)
    if committed:
        commit(repo)
    assert files(repo) == before


@pytest.mark.parametrize("change", RELEVANT_CHANGES, ids=list(RELEVANT_CHANGES))
def test_changes_to_code_change_the_key(repo, change):
    before = files(repo)
    RELEVANT_CHANGES[change](repo)
    git(repo, "add", "-A")  # tracked (staged), not yet committed
    assert files(repo) != before


UNTRACKED_OUTPUTS = {
    "training log": "train.log",
    "sqlite store in the project": "mlflow.db",
    "results": "results/metrics.json",
    "a checkpoint": "checkpoints/epoch-3.pt",
    "a scratch notebook": "scratch.ipynb",
    "mlci outputs": "mlci-out/train.json",
}


@pytest.mark.parametrize("name", UNTRACKED_OUTPUTS, ids=list(UNTRACKED_OUTPUTS))
def test_untracked_files_under_the_project_root_are_not_part_of_the_key(repo, name):
    before = hash_code_paths(["."], repo, exclude=[repo / "mlci.yml"])
    path = repo / UNTRACKED_OUTPUTS[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("written by a run\n")
    after = hash_code_paths(["."], repo, exclude=[repo / "mlci.yml"])
    assert after.files == before.files
    if not name.startswith("mlci"):
        assert UNTRACKED_OUTPUTS[name] in after.untracked_skipped  # --explain-cache names what it left out


def test_untracked_files_count_when_declared(repo):
    before = files(repo, ["train.py", "src", "local_config.json"][:2])
    (repo / "src" / "new_module.py").write_text("N = 1\n")  # untracked, under a declared code path
    assert files(repo, ["train.py", "src"]) != before
    (repo / "local_config.json").write_text("{}")  # untracked, named on its own
    with_file = files(repo, ["train.py", "src", "local_config.json"])
    assert "local_config.json" in with_file


def test_a_file_named_in_code_paths_counts_even_when_it_looks_irrelevant(repo):
    (repo / "docs").mkdir()
    (repo / "docs" / "prompt.md").write_text("You are a model\n")
    assert "docs/prompt.md" not in files(repo)
    assert "docs/prompt.md" in files(repo, [".", "docs/prompt.md"])


def test_cache_exclude_adds_patterns(repo):
    (repo / "notebooks").mkdir()
    (repo / "notebooks" / "eda.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    kept = hash_code_paths(["."], repo).files
    dropped = hash_code_paths(["."], repo, irrelevant=["notebooks/"]).files
    assert "notebooks/eda.py" in kept and "notebooks/eda.py" not in dropped


# ---------------------------------------------------------------- environment

RUNNER_AND_SYSTEM = {
    "CI_JOB_ID": "8812", "CI_PIPELINE_ID": "991", "CI_PROJECT_DIR": "/builds/x/0/g/p", "GITLAB_USER_LOGIN": "bob",
    "RUNNER_TEMP_PROJECT_DIR": "/tmp/r", "FF_USE_FASTZIP": "true", "HOSTNAME": "runner-7", "PWD": "/builds/x",
    "HOME": "/root", "PATH": "/usr/bin:/venv/bin", "LANG": "C.UTF-8", "TERM": "xterm", "PIP_CACHE_DIR": "/c/pip",
    "HF_DATASETS_CACHE": "/builds/x/.cache", "MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLCI_OUT_DIR": "out",
    "KUBERNETES_CPU_REQUEST": "4", "VIRTUAL_ENV": "/venv", "GIT_DEPTH": "20", "SSH_AUTH_SOCK": "/tmp/s",
    "PYTHONPATH": "/x", "LC_ALL": "C",
}
SECRETS = {"DB_PASSWORD": "pw-123456", "HF_TOKEN": "hf_abcdefgh", "AWS_SECRET_ACCESS_KEY": "k" * 20,
           "MLCI_GITLAB_TOKEN": "glpat-aaaaaaaaaaaaaaaaaaaa"}


@pytest.mark.parametrize("name", [*RUNNER_AND_SYSTEM, *SECRETS])
def test_runner_system_mlci_and_secret_variables_are_not_inputs(name):
    base = {"ALPHA": "1.0"}
    assert user_environment({**base, name: "one value"}) == user_environment({**base, name: "another value"})


def test_variables_a_person_set_are_inputs_by_name_and_hashed_value():
    recorded = user_environment({"ALPHA": "1.0", "EPOCHS": "3", **RUNNER_AND_SYSTEM, **SECRETS})
    assert sorted(recorded) == ["ALPHA", "EPOCHS"]
    assert "1.0" not in json.dumps(recorded)
    assert user_environment({"ALPHA": "0.1"}) != user_environment({"ALPHA": "1.0"})


def test_masked_config_named_param_and_ignored_variables_are_not_inputs():
    env = {"ALPHA": "1", "MLCI_MASKED_VARIABLES": "WAREHOUSE_DSN", "WAREHOUSE_DSN": "x", "ALERT_AUTH": "y",
           "SEED": "3", "SLACK_CHANNEL": "#ml"}
    recorded = user_environment(env, ignore=["SLACK_*"], also_secret=["ALERT_AUTH"], params=["SEED"])
    assert sorted(recorded) == ["ALPHA"]


# ---------------------------------------------------------------- end to end, against a real sqlite store

TRAIN_READS_ALPHA = textwrap.dedent("""\
    import os, mlflow
    open("train.log", "a").write("run\\n")  # a log file next to the code
    with mlflow.start_run():
        mlflow.log_metric("rmse", 50 + float(os.environ.get("ALPHA", "1")))
    """)


@pytest.fixture
def alpha_project(project):
    project.write("train.py", TRAIN_READS_ALPHA)
    project.write("README.md", "# diabetes\n")
    project.config(f"""\
        model: {{name: diabetes}}
        train:
          command: {sys.executable} train.py
          telemetry-interval: 5
        gate:
          rules: [{{metric: rmse, max: 60}}]
        """)
    project.write(".gitignore", ".mlci/\nmlci-out/\n")
    git(project.root, "init", "-q")
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return project


def train(run_cli, monkeypatch, *args: str, **env: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return run_cli("train", *args)


def test_a_changed_environment_variable_is_a_miss_that_names_it_and_the_old_value_hits_again(
        alpha_project, run_cli, monkeypatch):
    code, out, err = train(run_cli, monkeypatch, ALPHA="1.0")
    assert code == 0, err
    first = alpha_project.dotenv()["MLCI_RUN_ID"]

    code, out, err = train(run_cli, monkeypatch, ALPHA="0.1")
    assert code == 0, err
    assert "cache hit" not in out
    assert "environment differs" in out and "ALPHA changed" in out
    second = alpha_project.dotenv()["MLCI_RUN_ID"]
    assert second != first and alpha_project.summary()["cache_hit"] is False

    code, out, _ = train(run_cli, monkeypatch, ALPHA="1.0")
    assert code == 0 and "cache hit" in out and alpha_project.dotenv()["MLCI_RUN_ID"] == first

    monkeypatch.delenv("ALPHA")
    code, out, _ = run_cli("train")
    assert "cache hit" not in out and "ALPHA unset" in out


def test_a_rerun_with_nothing_changed_hits_despite_logs_docs_and_other_config_sections(
        alpha_project, run_cli, monkeypatch):
    assert train(run_cli, monkeypatch, ALPHA="1.0")[0] == 0
    first = alpha_project.dotenv()["MLCI_RUN_ID"]
    assert (alpha_project.root / "train.log").exists()  # untracked output of the first run
    (alpha_project.root / "README.md").write_text("# diabetes\n\nNow with docs.\n")
    text = (alpha_project.root / "mlci.yml").read_text().replace("max: 60", "max: 58")
    (alpha_project.root / "mlci.yml").write_text(text)
    monkeypatch.setenv("CI_PIPELINE_ID", "12345")
    monkeypatch.setenv("CI_JOB_ID", "777")
    monkeypatch.setenv("DB_PASSWORD", "rotated-secret-value")

    code, out, err = run_cli("train")
    assert code == 0, err
    assert "cache hit" in out and alpha_project.dotenv()["MLCI_RUN_ID"] == first


def test_explain_cache_prints_every_input_and_what_differs_from_the_nearest_run(alpha_project, run_cli, monkeypatch):
    assert train(run_cli, monkeypatch, ALPHA="1.0")[0] == 0
    runs_before = len(alpha_project.runs())
    (alpha_project.root / "train.py").write_text(TRAIN_READS_ALPHA + "# tuned\n")
    monkeypatch.setenv("ALPHA", "0.3")

    code, out, err = run_cli("train", "--explain-cache")

    assert code == 0, err
    for line in ("run-cache key", "code: 1 file(s)", "data: 0 file(s)", "params: none", "image:",
                 f"command: {sys.executable} train.py"):
        assert line in out
    environment = next(line for line in out.splitlines() if line.strip().startswith("environment:"))
    assert "ALPHA" in environment and "(values hashed)" in environment
    assert "README.md" in next(line for line in out.splitlines() if "left out, cannot change the model" in line)
    assert "left out, untracked" in out and "train.log" in out
    assert "would train" in out and "code: changed: train.py" in out and "env: ALPHA changed" in out
    assert "0.3" not in out  # values are never shown, only that they differ
    assert len(alpha_project.runs()) == runs_before  # explaining never trains

    monkeypatch.setenv("ALPHA", "1.0")
    (alpha_project.root / "train.py").write_text(TRAIN_READS_ALPHA)
    code, out, _ = run_cli("train", "--explain-cache")
    assert code == 0 and "cache hit" in out
