"""`mlci deploy` and `mlci rollback` against a real MLflow sqlite registry, with command targets."""

import json

import pytest

from mlci.outputs.dotenv import read_dotenv
from tests.deploy.conftest import COMMAND_DEPLOY, MODEL

CI_VARIABLES = {
    "GITLAB_USER_LOGIN": "alice",
    "CI_PIPELINE_ID": "901",
    "CI_PIPELINE_URL": "https://gitlab.example/demo/-/pipelines/901",
    "CI_JOB_ID": "7702",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
}


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def deploy(run_cli, project, env, version=None):
    args = ["deploy", "--to", env] + (["--version", version] if version else [])
    return run_cli(*project.cli(*args))


def test_promote_through_staging_to_production_with_pinned_uris_and_markers(run_cli, project):
    code, out, err = deploy(run_cli, project, "staging", "1")
    assert code == 0, err
    assert (project.root / "deployed-staging.txt").read_text() == "models:/demo/1 1 staging"
    assert project.marker("staging") == "1"
    assert project.marker("champion") is None  # champion rides with production only
    assert read_dotenv(project.out / "deploy-staging.env") == {
        "MLCI_DEPLOY_URL": "http://staging.invalid", "MLCI_MODEL_VERSION": "1", "MLCI_ENVIRONMENT": "staging",
        "MLCI_MODEL_ARTIFACT": "original", "MLCI_SERVED_MODEL_URI": "models:/demo/1",
    }
    assert "deployed demo version 1 to 'staging'" in out

    code, _, err = deploy(run_cli, project, "production")  # version defaults to the staging holder
    assert code == 0, err
    assert (project.root / "deployed-production.txt").read_text() == "models:/demo/1"
    assert (project.marker("production"), project.marker("champion")) == ("1", "1")
    log = read_json(project.out / "deploy-production.json")
    assert log["version"] == 1 and log["status"] == "deployed"
    assert log["markers-moved"] == ["production", "champion"]
    assert log["details"]["version-source"] == "holder of marker 'staging'"
    assert log["model-uri"] == "models:/demo/1"


def test_audit_record_is_on_the_version_and_in_the_log_artifact(run_cli, project, clean_env):
    for name, value in CI_VARIABLES.items():
        clean_env.setenv(name, value)
    assert deploy(run_cli, project, "staging", "1")[0] == 0
    assert deploy(run_cli, project, "staging", "2")[0] == 0

    log = read_json(project.out / "deploy-staging.json")
    expected = {
        "who": "alice", "pipeline": "901", "job": "7702", "commit": CI_VARIABLES["CI_COMMIT_SHA"],
        "environment": "staging", "from-version": "1", "to-version": "2", "action": "deploy",
    }
    assert {key: log["audit"][key] for key in expected} == expected
    assert log["who"] == "alice" and log["when"] and log["pipeline-url"] == CI_VARIABLES["CI_PIPELINE_URL"]
    stored = [r for r in project.registry().audit_trail(MODEL, "2") if r.get("action") == "deploy"]
    assert stored == [log["audit"]]
    first = [r for r in project.registry().audit_trail(MODEL, "1") if r.get("action") == "deploy"]
    assert first[0]["from-version"] is None and first[0]["to-version"] == "1"


def test_version_comes_from_the_gate_dotenv_variable(run_cli, project, clean_env):
    clean_env.setenv("MLCI_MODEL_VERSION", "2")
    assert deploy(run_cli, project, "staging")[0] == 0
    assert project.marker("staging") == "2"
    assert read_json(project.out / "deploy-staging.json")["details"]["version-source"] == "MLCI_MODEL_VERSION"


def test_first_environment_defaults_to_the_candidate(run_cli, project):
    project.registry().move_marker(MODEL, "candidate", "2")
    assert deploy(run_cli, project, "staging")[0] == 0
    assert project.marker("staging") == "2"


def test_nothing_to_deploy_is_a_usage_error(run_cli, project):
    code, _, err = deploy(run_cli, project, "staging")
    assert code == 2
    assert "no version holds marker 'candidate'" in err


def test_unblessed_version_is_refused_and_nothing_runs(run_cli, project):
    code, _, err = deploy(run_cli, project, "staging", "3")
    assert code == 1
    assert "refusing to deploy version 3 to 'staging'" in err and "not validated" in err
    assert not (project.root / "deployed-staging.txt").exists()
    assert project.marker("staging") is None
    log = read_json(project.out / "deploy-staging.json")
    assert log["status"] == "refused" and "not validated" in log["error"]
    assert not (project.out / "deploy-staging.env").exists()


def test_skipping_staging_is_refused(run_cli, project):
    assert deploy(run_cli, project, "staging", "1")[0] == 0
    code, _, err = deploy(run_cli, project, "production", "2")
    assert code == 1
    assert "does not hold the 'staging' marker; it is held by version 1" in err
    assert project.marker("production") is None and project.marker("champion") is None


def test_a_version_missing_from_the_registry_is_refused(run_cli, project):
    code, _, err = deploy(run_cli, project, "staging", "42")
    assert code == 1 and "has no version 42" in err


def test_failing_target_leaves_the_marker_on_the_previous_version(run_cli, project):
    assert deploy(run_cli, project, "staging", "1")[0] == 0
    project.write_config("""\
        deploy:
          environments:
            - name: staging
              target: command
              command: 'echo "rolling out $MLCI_MODEL_VERSION"; echo "cluster said no" >&2; exit 7'
            - name: production
              target: command
              command: "true"
        """)
    (project.out / "deploy-staging.env").unlink()
    code, out, err = deploy(run_cli, project, "staging", "2")
    assert code == 1
    assert "exited with code 7" in err and "cluster said no" in err
    assert "marker stays on version 1" in err
    assert "| rolling out 2" in out  # the command's output is relayed live
    assert project.marker("staging") == "1"
    log = read_json(project.out / "deploy-staging.json")
    assert (log["status"], log["from-version"], log["to-version"]) == ("failed", "1", "2")
    assert log["markers-moved"] == []
    assert not (project.out / "deploy-staging.env").exists()
    failed = [r for r in project.registry().audit_trail(MODEL, "2") if r.get("action") == "deploy-failed"]
    assert len(failed) == 1 and "exited with code 7" in failed[0]["error"]


def test_command_timeout_fails_the_deploy(run_cli, project):
    project.write_config("""\
        deploy:
          environments:
            - name: staging
              target: command
              command: "sleep 30"
              command-timeout: 0.5
        """)
    code, _, err = deploy(run_cli, project, "staging", "1")
    assert code == 1 and "timed out after 0.5 s" in err
    assert project.marker("staging") is None


def test_redeploying_the_same_version_reruns_the_target_and_moves_nothing(run_cli, project):
    assert deploy(run_cli, project, "staging", "1")[0] == 0
    (project.root / "deployed-staging.txt").unlink()
    code, out, _ = deploy(run_cli, project, "staging", "1")
    assert code == 0 and "redeployed" in out
    assert (project.root / "deployed-staging.txt").exists()
    log = read_json(project.out / "deploy-staging.json")
    assert log["status"] == "redeployed" and log["markers-moved"] == []


def test_unknown_environment_is_a_usage_error(run_cli, project):
    code, _, err = deploy(run_cli, project, "qa", "1")
    assert code == 2 and "unknown environment 'qa'" in err


def test_unreachable_registry_exits_3_and_names_the_url(run_cli, project, clean_env):
    from mlci.deploy.serve import free_port

    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    clean_env.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    code, _, err = run_cli(*project.cli("--set", f"mlflow.tracking-uri={url}", "deploy", "--to", "staging",
                                        "--version", "1"))
    assert code == 3
    assert url in err
    assert not (project.root / "deployed-staging.txt").exists()


def rollback(run_cli, project, *args):
    return run_cli(*project.cli("rollback", *args))


def test_rollback_returns_to_the_previous_version_and_records_the_reason(run_cli, project, clean_env):
    clean_env.setenv("GITLAB_USER_LOGIN", "bob")
    for version in ("1", "2"):
        assert deploy(run_cli, project, "staging", version)[0] == 0
        assert deploy(run_cli, project, "production", version)[0] == 0
    assert project.marker("champion") == "2"

    clean_env.setenv("MLCI_ROLLBACK_REASON", "error rate doubled")
    code, _, err = rollback(run_cli, project, "--env", "production")
    assert code == 0, err
    assert (project.root / "deployed-production.txt").read_text() == "models:/demo/1"  # the target re-ran
    assert (project.marker("production"), project.marker("champion")) == ("1", "1")
    assert project.marker("staging") == "2"  # other environments are untouched
    log = read_json(project.out / "rollback-production.json")
    assert (log["status"], log["from-version"], log["to-version"]) == ("rolled-back", "2", "1")
    assert log["reason"] == "error rate doubled" and log["who"] == "bob"
    assert log["markers-moved"] == ["production", "champion"]
    records = [r for r in project.registry().audit_trail(MODEL, "1") if r.get("action") == "rollback"]
    assert records == [log["audit"]]
    assert records[0]["environment"] == "production" and records[0]["chosen-by"] == "audit trail"

    # v2 was rolled away from, and v1 is the oldest: nothing further back to go to.
    code, _, err = rollback(run_cli, project, "--env", "production")
    assert code == 1 and "nothing to roll back to" in err


def test_rollback_to_an_exact_version_that_held_the_environment(run_cli, project):
    for version in ("1", "2"):
        assert deploy(run_cli, project, "staging", version)[0] == 0
    code, _, err = rollback(run_cli, project, "--env", "staging", "--to", "3", "--reason", "try v3")
    assert code == 1 and "never held the 'staging' marker" in err
    assert project.marker("staging") == "2"
    assert read_json(project.out / "rollback-staging.json")["status"] == "refused"

    code, _, err = rollback(run_cli, project, "--env", "staging", "--to", "1", "--reason", "bad latency")
    assert code == 0, err
    assert read_json(project.out / "rollback-staging.json")["details"]["chosen-by"] == "--to"
    assert project.marker("staging") == "1"
    assert (project.root / "deployed-staging.txt").read_text() == "models:/demo/1 1 staging"
    assert read_json(project.out / "rollback-staging.json")["audit"]["reason"] == "bad latency"


def test_rollback_to_from_the_manual_jobs_variables_and_empty_means_default(run_cli, project, clean_env):
    for version in ("1", "2"):
        assert deploy(run_cli, project, "staging", version)[0] == 0
    # The template runs `mlci rollback --env ENV --to "$MLCI_ROLLBACK_TO"`: unset gives --to "".
    code, _, err = rollback(run_cli, project, "--env", "staging", "--to", "")
    assert code == 0, err
    assert project.marker("staging") == "1"
    assert read_json(project.out / "rollback-staging.json")["details"]["chosen-by"] == "audit trail"
    assert deploy(run_cli, project, "staging", "2")[0] == 0
    clean_env.setenv("MLCI_ROLLBACK_TO", "3")
    code, _, err = rollback(run_cli, project, "--env", "staging")
    assert code == 1 and "version 3" in err and "never held" in err


def test_the_same_flow_works_with_tag_markers_as_on_gitlabs_mlflow(run_cli, project):
    # GitLab's built-in MLflow has no aliases: markers are version tags with the same single holder.
    project.registry_mode = "tag"
    project.write_config(COMMAND_DEPLOY)
    for version in ("1", "2"):
        assert deploy(run_cli, project, "staging", version)[0] == 0
    assert deploy(run_cli, project, "production")[0] == 0
    assert rollback(run_cli, project, "--env", "staging", "--reason", "tag mode")[0] == 0
    registry = project.registry()
    holders = {v.version: set(v.aliases) for v in registry.latest_versions(MODEL)}
    assert holders == {"1": {"staging"}, "2": {"production", "champion"}, "3": set()}
    assert registry.get_version(MODEL, "1").tags["mlci.marker.staging"] == "true"


def test_rollback_of_an_empty_environment_is_refused(run_cli, project):
    code, _, err = rollback(run_cli, project, "--env", "production")
    assert code == 1 and "no version holds the 'production' marker" in err


def test_failing_rollback_target_keeps_the_marker(run_cli, project):
    for version in ("1", "2"):
        assert deploy(run_cli, project, "staging", version)[0] == 0
    project.write_config("""\
        deploy:
          environments:
            - name: staging
              target: command
              command: "exit 3"
        """)
    code, _, err = rollback(run_cli, project, "--env", "staging")
    assert code == 1 and "marker stays on version 2" in err
    assert project.marker("staging") == "2"
    assert read_json(project.out / "rollback-staging.json")["status"] == "failed"


@pytest.mark.parametrize(
    ("deploy_yaml", "message"),
    [
        ("deploy:\n  environments:\n    - name: staging\n    - name: staging\n", "listed twice"),
        ("deploy:\n  environments:\n    - name: champion\n", "cannot name an environment"),
        ("deploy:\n  environments:\n    - name: staging\n      target: command\n", "no `command`"),
        ("deploy:\n  environments:\n    - name: staging\n      target: kubernetes\n", "no `kubernetes.image`"),
        ("deploy:\n  environments:\n    - name: staging\n      targte: command\n", "did you mean 'target'"),
        ("deploy:\n  environments:\n    - name: Staging Env\n", "does not match"),
    ],
)
def test_config_mistakes_exit_2_with_a_location_in_mlci_yml(run_cli, project, deploy_yaml, message):
    project.write_config(deploy_yaml)
    code, _, err = deploy(run_cli, project, "staging", "1")
    assert code == 2
    assert message in err
    assert "mlci.yml:" in err
