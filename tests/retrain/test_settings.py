"""The retrain section of mlci.yml: defaults, and every mistake located at its line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlci.config import load_effective
from mlci.errors import ConfigError
from mlci.retrain.settings import ALL_EVENTS, load_settings


def _settings(project, text: str):
    project.write_config(text)
    return load_settings(load_effective(project.root / "mlci.yml", env={}))


def test_defaults_are_safe_and_explicit(project):
    settings = _settings(project, "model:\n  name: churn\n")
    assert settings.on_pass == "register-only"  # nothing is promoted unless asked
    assert settings.max_model_age is None
    assert settings.mr_branch_prefix == "mlci/retrain/"
    assert settings.hooks == {} and settings.notify == ()


def test_full_section_loads(project):
    settings = _settings(project, """
        retrain:
          max-model-age: 2w
          on-pass: merge-request
          merge-request: {target-branch: develop}
          hooks:
            fetch-data: python fetch.py
          notify:
            - url-variable: SLACK_WEBHOOK
              events: [drift, blocked]
              headers: {X-Api-Key: ALERT_KEY}
            - url: https://alerts.example.com/hook
    """)
    assert settings.max_model_age == timedelta(days=14)
    assert settings.mr_target_branch == "develop"
    assert settings.hooks["fetch-data"].command == "python fetch.py"
    first, second = settings.notify
    assert first.events == ("drift", "blocked") and first.headers == {"X-Api-Key": "ALERT_KEY"}
    assert first.label == "$SLACK_WEBHOOK"
    assert second.events == ALL_EVENTS and second.max_retries == 3 and second.timeout == 10


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        ("retrain:\n  notify:\n    - url: https://a.example\n      url-variable: HOOK\n", "3:7", "exactly one of"),
        ("retrain:\n  notify:\n    - events: [gate]\n", "3:7", "exactly one of"),
        ("retrain:\n  max-model-age: 30x\n", "2:18", "unknown unit 'x'"),
        ("retrain:\n  notify:\n    - url: https://a.example\n      headers: {Authorization: Bearer s3cr3t}\n",
         "4:32", "not the value itself"),
    ],
)
def test_semantic_mistakes_are_located(project, text, location, message):
    with pytest.raises(ConfigError) as caught:
        _settings(project, text)
    assert f"mlci.yml:{location}" in str(caught.value)
    assert message in str(caught.value)
    assert "s3cr3t" not in str(caught.value) + str(caught.value.hint)


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        ("retrain:\n  on-pass: promote-production\n", "2:12", "is not one of"),
        ("retrain:\n  notify:\n    - url: https://a.example\n      events: [deploy]\n", "4:16", "is not one of"),
        ("retrain:\n  notify:\n    - url: ftp://a.example\n", "3:12", "does not match"),
        ("retrain:\n  max-model-ages: 30d\n", "2:3", "did you mean 'max-model-age'"),
    ],
)
def test_schema_mistakes_are_located(project, text, location, message):
    with pytest.raises(ConfigError) as caught:
        _settings(project, text)
    assert f"mlci.yml:{location}" in str(caught.value)
    assert message in str(caught.value)


def test_on_pass_can_be_overridden_from_the_environment(project):
    project.write_config("retrain:\n  on-pass: merge-request\n")
    config = load_effective(project.root / "mlci.yml", env={"MLCI_RETRAIN_ON_PASS": "register-only"})
    assert load_settings(config).on_pass == "register-only"
