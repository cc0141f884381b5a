"""mlci.yml loading: located errors, did-you-mean, layering and sources."""

from __future__ import annotations

import json
import textwrap

import pytest

from mlci.config import load_effective
from mlci.errors import ConfigError, ConfigErrors


def write(tmp_path, text: str):
    path = tmp_path / "mlci.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_every_schema_violation_is_reported_with_line_and_column(tmp_path, clean_env):
    path = write(tmp_path, """\
        version: 1
        model:
          name: churn
          nmae: typo
        mlflow:
          registry-mode: sometimes
        gitlab:
          timeout: fast
        """)
    with pytest.raises(ConfigErrors) as info:
        load_effective(path, env={})
    messages = [e.message for e in info.value.errors]
    assert messages == [
        f"{path}:4:3: unknown key 'nmae'; did you mean 'name'?",
        f'{path}:6:18: "sometimes" is not one of: "auto", "alias", "tag"',
        f"{path}:8:12: expected number, got str \"fast\"",
    ]


def test_unknown_top_level_section_suggests_the_close_name(tmp_path, clean_env):
    path = write(tmp_path, "gaet:\n  rules: []\n")
    with pytest.raises(ConfigErrors) as info:
        load_effective(path, env={})
    assert info.value.errors[0].message == f"{path}:1:1: unknown key 'gaet'; did you mean 'gate'?"


def test_duplicate_keys_are_errors_not_silently_last_wins(tmp_path, clean_env):
    path = write(tmp_path, "model:\n  name: a\n  name: b\n")
    with pytest.raises(ConfigError, match=r"mlci.yml:3:3: duplicate key 'name'"):
        load_effective(path, env={})


def test_broken_yaml_points_at_the_problem(tmp_path, clean_env):
    path = write(tmp_path, "model:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"mlci.yml:\d+:\d+: invalid YAML"):
        load_effective(path, env={})


def test_missing_explicit_config_file_is_an_error(tmp_path, clean_env):
    with pytest.raises(ConfigError, match="config file not found"):
        load_effective(tmp_path / "nope.yml", env={})


def test_precedence_flag_over_env_over_file_over_ci(tmp_path, clean_env):
    path = write(tmp_path, """\
        project:
          name: from-file
        mlflow:
          registry-mode: alias
          experiment: file-exp
        gitlab:
          timeout: 10
        """)
    env = {
        "CI_PROJECT_NAME": "from-ci",
        "CI_PROJECT_PATH": "group/from-ci",
        "CI_SERVER_URL": "https://gitlab.example.com/gitlab",
        "MLCI_MLFLOW_REGISTRY_MODE": "tag",
        "MLCI_GITLAB_TIMEOUT": "20",
    }
    config = load_effective(path, env=env, overrides=["gitlab.timeout=30"])
    assert config.get("project", "name") == "from-file"
    assert config.source_of("project", "name") == f"file {path}:2:9"
    assert config.get("mlflow", "registry-mode") == "tag"
    assert config.source_of("mlflow", "registry-mode") == "env MLCI_MLFLOW_REGISTRY_MODE"
    assert config.get("gitlab", "timeout") == 30
    assert config.source_of("gitlab", "timeout") == "flag --set"
    assert config.get("gitlab", "url") == "https://gitlab.example.com/gitlab"
    assert config.source_of("gitlab", "url") == "env CI_SERVER_URL"
    assert config.get("mlflow", "experiment") == "file-exp"
    assert config.get("model", "name") == "from-file"


def test_env_values_are_typed_by_the_schema(tmp_path, clean_env):
    with pytest.raises(ConfigError, match="MLCI_GITLAB_TIMEOUT: expected number"):
        load_effective(None, env={"MLCI_GITLAB_TIMEOUT": "soon"})


def test_set_with_unknown_key_suggests(tmp_path, clean_env):
    with pytest.raises(ConfigError, match=r"did you mean 'gitlab\.timeout'"):
        load_effective(None, env={}, overrides=["gitlab.timout=3"])


def test_mlflow_tracking_uri_env_is_honoured(clean_env):
    config = load_effective(None, env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"})
    assert config.get("mlflow", "tracking-uri") == "http://127.0.0.1:5000"
    assert config.source_of("mlflow", "tracking-uri") == "env MLFLOW_TRACKING_URI"


def test_config_show_lists_sources(tmp_path, clean_env, run_cli, monkeypatch):
    path = write(tmp_path, "project:\n  name: demo\n")
    monkeypatch.setenv("MLCI_GITLAB_MAX_RETRIES", "5")
    code, out, _ = run_cli("--config", str(path), "config", "show", "--format", "json")
    assert code == 0
    values = json.loads(out)["values"]
    assert values["project.name"] == {"value": "demo", "source": f"file {path}:2:9"}
    assert values["gitlab.max-retries"] == {"value": 5, "source": "env MLCI_GITLAB_MAX_RETRIES"}
    assert values["mlflow.registry-mode"]["source"] == "default"


def test_config_error_exits_2_with_location_on_stderr(tmp_path, clean_env, run_cli):
    path = write(tmp_path, "model:\n  nmae: x\n")
    code, _, err = run_cli("--config", str(path), "config", "show")
    assert code == 2
    assert f"{path}:2:3: unknown key 'nmae'; did you mean 'name'?" in err


def test_config_show_names_the_file_line_of_values_inside_open_ended_sections(tmp_path, clean_env, run_cli,
                                                                              monkeypatch):
    write(tmp_path, """\
        version: 1
        data:
          sources:
            patients:
              path: data/patients.parquet
        """)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli("config", "show", "--format", "json")
    assert code == 0
    values = json.loads(out)["values"]
    assert values["data.sources.patients.path"] == {"value": "data/patients.parquet", "source": "file mlci.yml:5:13"}
    assert values["data.drift.exclude"]["source"] == "default"
