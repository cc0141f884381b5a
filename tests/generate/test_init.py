"""`mlci init`: a valid starter project, never overwriting a user's files by accident."""

from __future__ import annotations

import subprocess

import pytest
import yaml


@pytest.fixture
def project(tmp_path, monkeypatch, clean_env):
    root = tmp_path / "churn-model"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def test_init_writes_a_config_the_loader_accepts_and_a_pipeline_that_lints_clean(project, run_cli):
    from mlci.config import load_effective
    from mlci.lint import lint_file

    code, out, err = run_cli("init", "--owner", "ml-platform", "--metric", "roc_auc", "--gpu-tag", "gpu-a100")
    assert code == 0, err
    assert {p.name for p in project.iterdir()} == {"mlci.yml", ".gitlab-ci.yml", "ci_templates", ".gitignore"}
    config = load_effective("mlci.yml", env={})
    assert config.get("project", "name") == "churn-model"
    assert config.get("model", "name") == "churn-model"
    assert config.get("project", "owner") == "ml-platform"
    assert config.get("model", "metrics-direction") == {"roc_auc": "higher"}
    assert [rule["metric"] for rule in config.get("gate", "rules")] == ["roc_auc", "roc_auc"]
    assert config.get("schedules")[0]["variables"] == {"MLCI_PIPELINE": "retrain"}
    assert config.source_of("train", "command") == "file mlci.yml:33:12"

    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    result = lint_file(project / ".gitlab-ci.yml")
    assert result.findings == []
    assert "mlci-train" in result.jobs and "mlci-retrain-run" in result.jobs
    pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    train = next(e for e in pipeline["include"] if e["local"] == "ci_templates/mlci-train.yml")
    assert train["inputs"]["tags"] == ["gpu-a100"]
    assert "next: set MLFLOW_TRACKING_URI" in out


def test_init_refuses_to_overwrite_an_edited_file_without_force(project, run_cli):
    assert run_cli("init")[0] == 0
    edited = "version: 1\nproject: {name: mine}\n"
    (project / "mlci.yml").write_text(edited)
    code, _, err = run_cli("init", "--train-command", "python other.py")
    assert code == 2
    assert "refusing to overwrite mlci.yml" in err and "--force" in err
    assert "skipped mlci.yml: it exists and differs from what `mlci init` would write now" in err
    assert (project / "mlci.yml").read_text() == edited, "nothing was touched"
    assert "python other.py" not in (project / ".gitlab-ci.yml").read_text()

    code, _out, err = run_cli("init", "--force", "--train-command", "python other.py")
    assert code == 0
    assert "command: python other.py" in (project / "mlci.yml").read_text()


def test_init_again_with_the_same_answers_changes_nothing(project, run_cli):
    assert run_cli("init")[0] == 0
    code, out, _ = run_cli("init")
    assert code == 0 and "wrote" not in out
    assert "skipped mlci.yml: already what `mlci init` would write" in out
    assert "skipped .gitlab-ci.yml: already what `mlci init` would write" in out


@pytest.mark.parametrize(("kind", "key", "value"), [
    ("project", "project", "ml/mlci"),
    ("component", "component", f"$CI_SERVER_FQDN/ml/mlci/train@{__import__('mlci').__version__}"),
])
def test_init_can_include_from_the_mlci_project_or_the_catalog(project, run_cli, kind, key, value):
    code, _, _ = run_cli("init", "--include", kind, "--mlci-project", "ml/mlci")
    assert code == 0
    assert not (project / "ci_templates").exists(), "nothing to copy when the templates come from elsewhere"
    includes = yaml.safe_load((project / ".gitlab-ci.yml").read_text())["include"]
    train = includes[1]
    assert train[key] == value
    from mlci import __version__

    if kind == "project":
        assert train["file"] == "ci_templates/mlci-train.yml" and train["ref"] == __version__
    # the jobs install mlci from the PyPI registry of the project named, not the templates' default one
    assert train["inputs"]["index-url"].endswith("/api/v4/projects/ml%2Fmlci/packages/pypi/simple")
    assert "install-spec" not in train["inputs"], "the templates install their own version"
    # light jobs pull that project's release image at the same version; training keeps a framework image
    data = includes[0]
    assert data["inputs"]["image"] == f"${{CI_REGISTRY}}/ml/mlci:{__version__}"
    assert train["inputs"]["image"] == "python:3.12-slim"


def test_init_in_a_missing_directory_is_a_usage_error(project, run_cli):
    code, _, err = run_cli("init", "--dir", "nowhere")
    assert code == 2 and "nowhere is not a directory" in err


def _ignored(project, *paths: str) -> list[str]:
    """What git itself ignores among `paths` (the real rules, not a text search)."""
    done = subprocess.run(["git", "check-ignore", *paths], cwd=project, capture_output=True, text=True)
    return done.stdout.split()


@pytest.mark.parametrize("existing", [None, "__pycache__/\n*.pyc", "data/\n/mlci-out\n"],
                         ids=["no .gitignore", "one without mlci's entries", "one with part of them"])
def test_init_makes_git_ignore_mlcis_outputs_so_git_add_dot_is_safe(project, run_cli, existing):
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    if existing is not None:
        (project / ".gitignore").write_text(existing)
    code, out, err = run_cli("init")
    assert code == 0, err
    (project / ".mlci" / "serve").mkdir(parents=True)
    (project / ".mlci" / "mlflow.db").write_text("store")
    (project / "mlci-out").mkdir()
    (project / "mlci-out" / "train.json").write_text("{}")
    assert _ignored(project, ".mlci/mlflow.db", "mlci-out/train.json") == [".mlci/mlflow.db", "mlci-out/train.json"]
    text = (project / ".gitignore").read_text()
    for line in (existing or "").splitlines():
        assert line in text.splitlines(), "the user's own entries stay"
    assert text.count("mlci-out") == 1 and text.count(".mlci/") == 1

    code, out, _ = run_cli("init")  # again: nothing added twice
    assert code == 0 and ".gitignore" not in out and (project / ".gitignore").read_text() == text
