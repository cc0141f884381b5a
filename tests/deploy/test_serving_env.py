"""MLServer's serving environment: built from the version's own requirements, cached by content, failures explained."""

from __future__ import annotations

import sys

import pytest

from mlci.deploy import serving_env


def test_requirements_come_from_the_model_with_nested_files_resolved(tmp_path):
    (tmp_path / "requirements.txt").write_text("mlflow==3.1.0\n# a comment\nscikit-learn==1.5.0  # pinned\n"
                                               "-r extra.txt\n\n")
    lines = serving_env.read_requirements(tmp_path)
    assert lines[:2] == ["mlflow==3.1.0", "scikit-learn==1.5.0"]
    assert lines[2] == f"-r {(tmp_path / 'extra.txt').resolve()}"
    assert serving_env.read_requirements(tmp_path / "missing") == []


def test_the_cache_key_depends_on_content_not_order():
    a = serving_env.env_key(sys.executable, ["b==1", "a==2"])
    assert a == serving_env.env_key(sys.executable, ["a==2", "b==1", "a==2"])
    assert a != serving_env.env_key(sys.executable, ["a==2", "b==2"])


def test_a_requirement_that_cannot_install_fails_with_uvs_output_and_leaves_no_half_env(tmp_path):
    missing = tmp_path / "no-such-wheel-1.0-py3-none-any.whl"
    env = {"PATH": serving_env.os.environ.get("PATH", ""), "UV_OFFLINE": "1", "HOME": str(tmp_path)}
    with pytest.raises(serving_env.EnvBuildFailed) as caught:
        serving_env.ensure_env([str(missing)], root=tmp_path / "envs", env=env)
    assert "exited with code" in str(caught.value)
    assert "no-such-wheel" in caught.value.output
    assert not [p for p in (tmp_path / "envs").iterdir() if p.is_dir()], "a failed build is removed"


def test_without_uv_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(serving_env.shutil, "which", lambda *a, **k: None)
    monkeypatch.setattr(serving_env.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(serving_env.EnvBuildFailed, match="pip install uv"):
        serving_env.uv_command({"PATH": ""})
