"""`mlci retrain decide` against a real sqlite MLflow registry."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from mlci.outputs.dotenv import read_dotenv


def _config(project, store, model, **retrain) -> None:
    project.write_data({
        "model": {"name": model},
        "mlflow": {"tracking-uri": store.uri},
        "retrain": {"max-model-age": "30d", **retrain},
    })


def _outputs(project):
    decision = json.loads((project.out / "retrain-decision.json").read_text())
    env = read_dotenv(project.out / "retrain.env")
    child = yaml.safe_load((project.out / "retrain-pipeline.yml").read_text())
    jobs = [k for k, v in child.items() if isinstance(v, dict) and "script" in v]
    return decision, env, child, jobs


def test_fresh_champion_without_drift_skips_and_says_why(project, mlflow_store, model_name, run_cli, clean_env):
    version = mlflow_store.add_version(model_name, champion=True)
    _config(project, mlflow_store, model_name)
    clean_env.setenv("MLCI_DRIFT", "false")

    code, out, err = run_cli(*project.cli("retrain", "decide", "--image", "trainer:1", "--train-tags", "gpu"))

    assert code == 0, err
    decision, env, child, jobs = _outputs(project)
    assert decision["version"] == 1
    assert decision["retrain"] is False
    assert decision["inputs"]["champion"]["version"] == version
    assert env["MLCI_RETRAIN"] == "false"
    assert "no data drift" in env["MLCI_RETRAIN_REASON"] and "within max-model-age 30d" in env["MLCI_RETRAIN_REASON"]
    assert jobs == ["mlci-retrain-skipped"], "no GPU job may start when nothing needs retraining"
    assert child["variables"]["MLCI_RETRAIN_REASON"]["value"] == decision["reason"]
    assert "no retraining needed" in out and f"champion v{version}" in out


def test_drift_retrains_with_a_gpu_training_job(project, mlflow_store, model_name, run_cli, clean_env):
    mlflow_store.add_version(model_name, champion=True)
    _config(project, mlflow_store, model_name)
    clean_env.setenv("MLCI_DRIFT", "true")
    clean_env.setenv("CI_PIPELINE_ID", "777")
    clean_env.setenv("CI_JOB_IMAGE", "registry.example.com/mlci:1")
    clean_env.setenv("MLCI_INSTALL", "auto")

    code, _out, err = run_cli(*project.cli(
        "retrain", "decide", "--image", "trainer:cuda", "--train-tags", "gpu,a100", "--train-timeout", "3h",
        "--train-command", "python train.py",
    ))

    assert code == 0, err
    decision, env, child, jobs = _outputs(project)
    assert decision["retrain"] is True and env["MLCI_RETRAIN"] == "true"
    assert "data drift detected" in env["MLCI_RETRAIN_REASON"]
    assert jobs == ["mlci-train", "mlci-gate", "mlci-retrain-conclude"]
    train = child["mlci-train"]
    assert (train["image"], train["tags"], train["timeout"]) == ("trainer:cuda", ["gpu", "a100"], "3h")
    assert train["needs"] == [{"pipeline": "777", "job": "mlci-retrain-fetch-data", "artifacts": True}]
    assert child["mlci-gate"]["image"] == "registry.example.com/mlci:1"  # light jobs reuse the decide job's image
    from mlci import __version__
    from mlci.generate.install import install_step

    for job, extra in zip(jobs, ("train", "gate", "retrain"), strict=True):  # each job: the install step, its extra
        assert child[job]["before_script"] == [install_step()]
        assert child[job]["variables"] == {"MLCI_EXTRA": extra}
    assert child["variables"]["MLCI_INSTALL"] == {"value": "auto", "expand": False}
    assert child["variables"]["MLCI_VERSION"] == {"value": __version__, "expand": False}
    # The child knows where the registry and the config are.
    assert child["variables"]["MLFLOW_TRACKING_URI"]["value"] == mlflow_store.uri
    assert child["variables"]["MLCI_CONFIG"]["value"] == str(project.root / "mlci.yml")


def test_old_champion_retrains(project, mlflow_store, model_name, run_cli, clean_env):
    mlflow_store.add_version(model_name, champion=True)
    _config(project, mlflow_store, model_name)
    clean_env.setenv("MLCI_DRIFT", "false")
    later = (datetime.now(timezone.utc) + timedelta(days=45)).isoformat()

    code, _, err = run_cli(*project.cli("retrain", "decide", "--now", later))

    assert code == 0, err
    decision, env, _, jobs = _outputs(project)
    assert decision["retrain"] is True
    assert "older than max-model-age 30d" in env["MLCI_RETRAIN_REASON"]
    assert "mlci-train" in jobs


def test_no_champion_at_all_retrains(project, mlflow_store, model_name, run_cli, clean_env):
    _config(project, mlflow_store, model_name)  # the model was never registered
    clean_env.setenv("MLCI_DRIFT", "false")

    code, _, err = run_cli(*project.cli("retrain", "decide"))

    assert code == 0, err
    decision, env, _, _ = _outputs(project)
    assert decision["retrain"] is True and decision["inputs"]["champion"] is None
    assert "no champion" in env["MLCI_RETRAIN_REASON"]


def test_a_newer_non_champion_version_does_not_count_as_the_champion(
    project, mlflow_store, model_name, run_cli, clean_env
):
    mlflow_store.add_version(model_name, champion=False)
    _config(project, mlflow_store, model_name)

    code, _, err = run_cli(*project.cli("retrain", "decide", "--drift", "false"))

    assert code == 0, err
    assert _outputs(project)[0]["retrain"] is True


def test_force_retrains(project, mlflow_store, model_name, run_cli, clean_env):
    mlflow_store.add_version(model_name, champion=True)
    _config(project, mlflow_store, model_name)
    clean_env.setenv("MLCI_DRIFT", "false")
    clean_env.setenv("MLCI_FORCE_RETRAIN", "true")

    code, _, err = run_cli(*project.cli("retrain", "decide"))

    assert code == 0, err
    decision, env, _, _ = _outputs(project)
    assert decision["retrain"] is True and decision["inputs"]["force"] is True
    assert "MLCI_FORCE_RETRAIN=true" in env["MLCI_RETRAIN_REASON"]


def test_max_model_age_from_the_environment_overrides_the_file(project, mlflow_store, model_name, run_cli, clean_env):
    mlflow_store.add_version(model_name, champion=True)
    _config(project, mlflow_store, model_name)
    clean_env.setenv("MLCI_RETRAIN_MAX_MODEL_AGE", "1h")
    later = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()

    code, _, err = run_cli(*project.cli("retrain", "decide", "--drift", "false", "--now", later))

    assert code == 0, err
    assert "older than max-model-age 1h" in _outputs(project)[0]["reason"]


def test_unclear_drift_variable_is_a_usage_error(project, mlflow_store, model_name, run_cli, clean_env):
    _config(project, mlflow_store, model_name)
    clean_env.setenv("MLCI_DRIFT", "maybe")

    code, _, err = run_cli(*project.cli("retrain", "decide"))

    assert code == 2
    assert "MLCI_DRIFT='maybe'" in err
    assert not (project.out / "retrain-pipeline.yml").exists()


def test_bad_max_model_age_points_at_the_line(project, mlflow_store, model_name, run_cli):
    project.write_config(f"""
        model:
          name: {model_name}
        retrain:
          on-pass: register-only
          max-model-age: 3 months
    """)

    code, _, err = run_cli(*project.cli("retrain", "decide"))

    assert code == 2
    assert f"{project.root / 'mlci.yml'}:5:18" in err
    assert "write days" in err


def test_bad_train_timeout_fails_before_any_network_call(project, model_name, run_cli):
    project.write_config(f"""
        model:
          name: {model_name}
        mlflow:
          tracking-uri: http://127.0.0.1:9
    """)

    code, _, err = run_cli(*project.cli("retrain", "decide", "--train-timeout", "forever"))

    assert code == 2
    assert "--train-timeout" in err


def test_template_style_empty_flags_fall_back_and_data_job_can_be_switched_off(
    project, mlflow_store, model_name, run_cli, clean_env
):
    _config(project, mlflow_store, model_name)
    clean_env.setenv("CI_PIPELINE_ID", "55")
    clean_env.setenv("MLCI_INSTALL", "preinstalled")

    code, _, err = run_cli(*project.cli(
        "retrain", "decide", "--force", "--image", "", "--train-tags", "", "--train-timeout", "",
        "--train-command", "", "--setup-command", "pip install mlci", "--data-job", "none",
    ))

    assert code == 0, err
    train = _outputs(project)[2]["mlci-train"]
    assert "image" not in train and "tags" not in train and "timeout" not in train
    assert train["script"] == ["mlci train"]
    assert train["before_script"] == ["pip install mlci"]
    assert train["needs"] == []


def test_outside_a_template_job_the_child_jobs_install_nothing(project, mlflow_store, model_name, run_cli,
                                                                clean_env):
    _config(project, mlflow_store, model_name)

    code, _, err = run_cli(*project.cli("retrain", "decide", "--force"))

    assert code == 0, err
    child = _outputs(project)[2]
    assert "before_script" not in child["mlci-train"] and "MLCI_INSTALL" not in child["variables"]


def test_the_job_token_in_the_index_url_is_never_written_into_the_child(
    project, mlflow_store, model_name, run_cli, clean_env
):
    _config(project, mlflow_store, model_name)
    token = "glcbt-64_jobtoken-SECRET"
    clean_env.setenv("CI_JOB_TOKEN", token)
    clean_env.setenv("MLCI_INSTALL", "pip")
    clean_env.setenv("MLCI_INDEX_URL", f"https://gitlab-ci-token:{token}@gitlab.example.com/api/v4/projects/"
                     "mlci%2Fmlci/packages/pypi/simple")
    clean_env.setenv("MLCI_INSTALL_SPEC", "mlci==1.2.3")

    code, _, err = run_cli(*project.cli("retrain", "decide", "--force"))

    assert code == 0, err
    text = (project.out / "retrain-pipeline.yml").read_text()
    assert token not in text
    variables = yaml.safe_load(text)["variables"]
    # expanded by GitLab in each child job, with that job's own token
    assert variables["MLCI_INDEX_URL"] == ("https://gitlab-ci-token:${CI_JOB_TOKEN}@gitlab.example.com/api/v4/"
                                           "projects/mlci%2Fmlci/packages/pypi/simple")
    assert variables["MLCI_INSTALL_SPEC"] == {"value": "mlci==1.2.3", "expand": False}


def test_other_credentials_in_install_settings_stay_out_of_the_child(
    project, mlflow_store, model_name, run_cli, clean_env
):
    _config(project, mlflow_store, model_name)
    clean_env.setenv("MLCI_INSTALL", "auto")
    clean_env.setenv("MLCI_INDEX_URL", "https://deploy:s3cret-pass@pypi.example.com/simple")
    clean_env.setenv("MLCI_INSTALL_SPEC", "mlci @ https://bot:s3cret-too@files.example.com/mlci-1.0-py3-none-any.whl")

    code, _, err = run_cli(*project.cli("retrain", "decide", "--force"))

    assert code == 0, err
    text = (project.out / "retrain-pipeline.yml").read_text()
    assert "s3cret" not in text
    assert "MLCI_INDEX_URL holds credentials" in err and "MLCI_INSTALL_SPEC holds credentials" in err


def test_train_command_as_argv_is_quoted_safely(project, mlflow_store, model_name, run_cli):
    _config(project, mlflow_store, model_name)

    code, _, err = run_cli(*project.cli("retrain", "decide", "--", "python", "train.py", "--name", "a b; rm -rf /"))

    assert code == 0, err
    child = _outputs(project)[2]
    assert child["mlci-train"]["script"] == ["mlci train"]
    command = child["variables"]["MLCI_TRAIN_COMMAND"]
    assert command == {"value": "python train.py --name 'a b; rm -rf /'", "expand": False}


def test_tracking_uri_with_a_password_is_not_written_into_the_child(project, model_name, run_cli, monkeypatch):
    # The registry lookup itself is not under test here.
    from mlci.adapters import mlflow as adapter

    monkeypatch.setattr(adapter.Registry, "get_marker", lambda self, model, marker: None)
    project.write_config(f"""
        model:
          name: {model_name}
        mlflow:
          tracking-uri: https://bob:s3cret-pass@mlflow.example.com
    """)

    code, _, err = run_cli(*project.cli("retrain", "decide"))

    assert code == 0, err
    text = (project.out / "retrain-pipeline.yml").read_text()
    assert "s3cret-pass" not in text
    assert "holds credentials" in err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_tracking_server_exits_3_naming_the_url(project, model_name, run_cli, clean_env):
    port = _closed_port()
    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    clean_env.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    project.write_config(f"""
        model:
          name: {model_name}
        mlflow:
          tracking-uri: http://127.0.0.1:{port}
          registry-mode: alias
    """)

    code, _, err = run_cli(*project.cli("retrain", "decide"))

    assert code == 3, err
    assert f"127.0.0.1:{port}" in err
    assert not (project.out / "retrain-pipeline.yml").exists(), "no child pipeline on a failed decision"


@pytest.mark.parametrize("drift", ["true", "false"])
def test_drift_notification_only_when_drift_was_detected(
    project, mlflow_store, model_name, run_cli, clean_env, httpserver, drift
):
    mlflow_store.add_version(model_name, champion=True)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    _config(project, mlflow_store, model_name, notify=[{"url": httpserver.url_for("/hook"), "events": ["drift"]}])
    clean_env.setenv("MLCI_DRIFT", drift)

    code, _, err = run_cli(*project.cli("retrain", "decide"))

    assert code == 0, err
    posted = [json.loads(request.data) for request, _ in httpserver.log]
    if drift == "true":
        assert len(posted) == 1
        assert posted[0]["event"] == "drift" and posted[0]["model"] == model_name and posted[0]["retrain"] is True
    else:
        assert posted == []


def test_on_pass_problems_surface_before_training(project, mlflow_store, model_name, run_cli):
    project.write_data({
        "model": {"name": model_name},
        "mlflow": {"tracking-uri": mlflow_store.uri},
        "deploy": {"environments": [{"name": "production"}]},
        "retrain": {"on-pass": "promote-staging"},
    })

    code, _, err = run_cli(*project.cli("retrain", "decide", "--force"))

    assert code == 2 and "has only 'production'" in err
    assert not (project.out / "retrain-pipeline.yml").exists()


def test_merge_request_mode_warns_early_about_a_missing_token(project, mlflow_store, model_name, run_cli):
    _config(project, mlflow_store, model_name, **{"on-pass": "merge-request"})

    code, _, err = run_cli(*project.cli("retrain", "decide", "--force"))

    assert code == 0
    assert "MLCI_GITLAB_TOKEN is not set" in err
    assert "mlci-report" in (project.out / "retrain-pipeline.yml").read_text()


def test_champion_age_uses_the_gates_champion_marker(project, mlflow_store, model_name, run_cli):
    version = mlflow_store.add_version(model_name, champion=False)
    mlflow_store.client.set_registered_model_alias(model_name, "prod-best", version)
    project.write_data({
        "model": {"name": model_name},
        "mlflow": {"tracking-uri": mlflow_store.uri},
        "gate": {"champion-marker": "prod-best"},
        "retrain": {"max-model-age": "30d"},
    })

    code, out, err = run_cli(*project.cli("retrain", "decide", "--drift", "false"))

    assert code == 0, err
    decision = _outputs(project)[0]
    assert decision["retrain"] is False and decision["inputs"]["champion"]["version"] == version
    assert f"prod-best v{version}" in out


def test_the_deploy_state_dir_of_the_parent_reaches_the_child_that_deploys_staging(
    project, mlflow_store, model_name, run_cli, clean_env
):
    """Without it, the child's promote-staging deploy records its server inside the job's own copy, where the
    next deploy or rollback of staging never finds it."""
    _config(project, mlflow_store, model_name)
    clean_env.setenv("MLCI_DEPLOY_STATE_DIR", "/srv/mlci/serve")

    code, _, err = run_cli(*project.cli("retrain", "decide", "--force"))

    assert code == 0, err
    variables = yaml.safe_load((project.out / "retrain-pipeline.yml").read_text())["variables"]
    assert variables["MLCI_DEPLOY_STATE_DIR"] == {"value": "/srv/mlci/serve", "expand": False}
