"""`mlci trigger`: how Airflow or an alert asks GitLab for a retraining pipeline."""

from __future__ import annotations

import json
import logging

import pytest


@pytest.fixture
def job_env(tmp_path, clean_env, fake_gitlab):
    clean_env.chdir(tmp_path)  # no mlci.yml: everything comes from the environment
    for name, value in fake_gitlab.env().items():
        clean_env.setenv(name, value)
    clean_env.setenv("MLCI_GITLAB_RETRY_BACKOFF", "0")
    return clean_env


def test_trigger_api_posts_form_with_retrain_default_and_prints_the_url(job_env, fake_gitlab, run_cli):
    job_env.setenv("MLCI_TRIGGER_TOKEN", fake_gitlab.trigger_token)
    fake_gitlab.add_branch("release")
    code, out, err = run_cli("trigger", "--ref", "release", "--variable", "REASON=drift alert",
                             "--variable", "EMPTY=")
    assert code == 0, err
    (pipeline,) = fake_gitlab.pipelines.values()
    assert pipeline["source"] == "trigger" and pipeline["ref"] == "release"
    assert pipeline["variables"] == {"MLCI_PIPELINE": "retrain", "REASON": "drift alert", "EMPTY": ""}
    sent = fake_gitlab.requests_to("POST", r"/trigger/pipeline$")[0]
    assert sent.form["token"] == fake_gitlab.trigger_token and "private-token" not in {h.lower() for h in sent.headers}
    assert out.splitlines()[-1] == pipeline["web_url"]
    assert fake_gitlab.trigger_token not in out + err


def test_pipelines_api_is_used_without_a_trigger_token(job_env, fake_gitlab, run_cli):
    code, out, err = run_cli("trigger", "--variable", "MLCI_PIPELINE=train", "--format", "json")
    assert code == 0, err
    (pipeline,) = fake_gitlab.pipelines.values()
    assert pipeline["source"] == "api" and pipeline["ref"] == "main"
    assert pipeline["variables"] == {"MLCI_PIPELINE": "train"}
    assert json.loads(out)["web_url"] == pipeline["web_url"]


def test_explicit_trigger_api_without_token_exits_3_with_setup_hint(job_env, fake_gitlab, run_cli):
    code, _, err = run_cli("trigger", "--api", "trigger")
    assert code == 3
    assert "MLCI_TRIGGER_TOKEN is not set" in err and "Pipeline trigger tokens" in err
    assert fake_gitlab.requests == []


def test_revoked_trigger_token_exits_3_and_is_never_printed(job_env, fake_gitlab, run_cli, caplog):
    caplog.set_level(logging.DEBUG)
    job_env.setenv("MLCI_TRIGGER_TOKEN", "glptt-revokedrevoked9999")
    code, out, err = run_cli("trigger")
    assert code == 3 and "HTTP 404" in err and "trigger token is wrong or revoked" in err
    assert "glptt-revokedrevoked9999" not in out + err + caplog.text


@pytest.mark.parametrize("bad", ["NOEQUALS", "1BAD=x", "BAD-NAME=x", "=x"])
def test_malformed_variables_are_usage_errors(job_env, fake_gitlab, run_cli, bad):
    code, _, err = run_cli("trigger", "--variable", bad)
    assert code == 2 and "KEY=VALUE" in err
    assert fake_gitlab.requests == []


@pytest.mark.parametrize("status", [401, 403, 404])
@pytest.mark.parametrize("variable", ["MLCI_TRIGGER_TOKEN", "ALERTMANAGER_TRIGGER"])
def test_a_rejected_trigger_token_names_the_trigger_token_variable_not_the_api_token(
        job_env, fake_gitlab, run_cli, status, variable):
    if variable != "MLCI_TRIGGER_TOKEN":
        job_env.setenv("MLCI_GITLAB_TRIGGER_TOKEN_VARIABLE", variable)
    job_env.setenv(variable, fake_gitlab.trigger_token)
    fake_gitlab.fail_next(r"/trigger/pipeline$", status, body={"message": f"{status} Unauthorized"})
    code, out, err = run_cli("trigger")
    assert code == 3 and f"HTTP {status}" in err
    hint = next(line for line in err.splitlines() if "hint:" in line)
    assert variable in hint and "MLCI_GITLAB_TOKEN" not in hint
    assert fake_gitlab.trigger_token not in out + err
