"""The child pipeline that `mlci retrain decide` writes, run the way a GitLab runner runs it, with
adversarial training commands and install specs: no payload runs in a job script, no variable
reference is expanded, and every value reaches mlci exactly as typed."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.security.injection import JOB_TOKEN, PAYLOADS, recorded, stubs


def run_like_a_runner(pipeline: dict, workdir: Path, stub_dir: Path) -> None:
    """Each job's before_script and script lines in bash, with the pipeline's and job's variables exported.

    `expand: false` values are exported as they are; GitLab does not expand them (nor does a shell
    re-read an exported value)."""
    base = {"PATH": f"{stub_dir}{os.pathsep}/usr/bin:/bin", "CI_JOB_TOKEN": JOB_TOKEN, "HOME": str(workdir)}
    pipeline_vars = {k: (v["value"] if isinstance(v, dict) else str(v)) for k, v in pipeline["variables"].items()}
    for name, job in pipeline.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        lines = [*job.get("before_script", []), *job["script"]]
        job_vars = {k: (v["value"] if isinstance(v, dict) else str(v)) for k, v in job.get("variables", {}).items()}
        done = subprocess.run(["bash", "-c", "set -eo pipefail\n" + "\n".join(lines)], cwd=workdir,
                              env={**base, **pipeline_vars, **job_vars}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"


@pytest.fixture
def decide_project(tmp_path, clean_env, monkeypatch):
    from mlci.adapters import mlflow as adapter

    monkeypatch.setattr(adapter.Registry, "get_marker", lambda self, model, marker: None)  # no champion: retrain
    root = tmp_path / "project"
    root.mkdir()
    (root / "mlci.yml").write_text("model: {name: diabetes}\n")
    clean_env.chdir(root)
    return root


@pytest.mark.parametrize("how", ["--train-command", "argv after --", "install spec"])
@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=list(PAYLOADS))
def test_child_pipeline_scripts_never_run_a_payload(decide_project, run_cli, clean_env, tmp_path, payload, how):
    marker = tmp_path / "PWNED"
    value = payload.format(m=marker)
    clean_env.setenv("CI_JOB_TOKEN", JOB_TOKEN)
    # What a template job hands over: its install mode, and the spec as a variable the child repeats.
    clean_env.setenv("MLCI_INSTALL", "pip")
    clean_env.setenv("MLCI_INSTALL_SPEC", value if how == "install spec" else "mlci==1.0")
    args = ["retrain", "decide", "--data-job", "none"]
    if how == "--train-command":
        args += ["--train-command", value]
    elif how == "argv after --":
        args += ["--", "python", "train.py", "--name", value]

    code, _, err = run_cli(*args)
    assert code == 0, err

    pipeline = yaml.safe_load((decide_project / "mlci-out" / "retrain-pipeline.yml").read_text())
    log = tmp_path / "calls.jsonl"
    run_like_a_runner(pipeline, decide_project, stubs(tmp_path / "bin", log))

    assert not marker.exists(), "a payload ran in a job script"
    calls = recorded(log)
    assert JOB_TOKEN not in json.dumps(calls), "a variable reference was expanded"
    train = next(c for c in calls if c["tool"] == "mlci" and c["argv"][:1] == ["train"])
    assert train["argv"] == ["train"]  # the command runs inside `mlci train`, not in the job shell
    if how == "--train-command":
        assert train["env"]["MLCI_TRAIN_COMMAND"] == value
    elif how == "argv after --":
        assert shlex.split(train["env"]["MLCI_TRAIN_COMMAND"]) == ["python", "train.py", "--name", value]
    else:
        pips = [c["argv"] for c in calls if c["tool"] == "python"]
        assert pips and all(argv[:4] == ["-m", "pip", "install", "--quiet"] for argv in pips)
        specs = [argv[-1] for argv in pips if "--no-deps" in argv]
        assert specs and all(spec == value for spec in specs), "the spec reached pip as one argument, as typed"


