"""`mlci retrain conclude`: every outcome in retrain-summary.json, each on-pass mode against real parts."""

from __future__ import annotations

import json
import socket

import pytest

from mlci.adapters.mlflow import Registry


def _summary(project) -> dict:
    return json.loads((project.out / "retrain-summary.json").read_text())


def _gate_env(clean_env, model: str, version: str, verdict: str = "passed") -> None:
    """What the gate job's dotenv hands to the conclude job."""
    clean_env.setenv("MLCI_GATE", verdict)
    clean_env.setenv("MLCI_MODEL_NAME", model)
    clean_env.setenv("MLCI_MODEL_VERSION", version)
    clean_env.setenv("MLCI_RUN_ID", "run-123")
    clean_env.setenv("MLCI_RETRAIN_REASON", "data drift detected; the champion is 40d old")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_skipped_is_recorded_with_its_reason(project, run_cli, clean_env, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    project.write_data({"model": {"name": "churn"}, "retrain": {"notify": [{"url": httpserver.url_for("/hook")}]}})
    clean_env.setenv("MLCI_RETRAIN_REASON", "no data drift; the champion is 3d old, within max-model-age 30d")
    clean_env.setenv("CI_PIPELINE_URL", "https://gitlab.example.com/g/p/-/pipelines/9")

    code, out, err = run_cli(*project.cli("retrain", "conclude", "--skipped"))

    assert code == 0, err
    summary = _summary(project)
    assert summary["version"] == 1
    assert summary["outcome"] == "skipped" and summary["retrained"] is False
    assert summary["reasons"] == ["no data drift", "the champion is 3d old, within max-model-age 30d"]
    assert summary["pipeline"]["url"].endswith("/pipelines/9")
    assert "retrain skipped: no data drift" in out  # the job log says why
    [(request, _)] = httpserver.log
    assert json.loads(request.data)["event"] == "skipped"


def test_blocked_exits_1_and_touches_no_registry(project, run_cli, clean_env, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    # The registry is unreachable: a blocked model must still conclude (and go red) without it.
    project.write_data({
        "model": {"name": "churn"},
        "mlflow": {"tracking-uri": f"http://127.0.0.1:{_closed_port()}"},
        "retrain": {"on-pass": "promote-staging", "notify": [{"url": httpserver.url_for("/hook")}]},
    })
    _gate_env(clean_env, "churn", "7", verdict="failed")

    code, _out, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 1
    summary = _summary(project)
    assert summary["outcome"] == "blocked" and summary["gate"] == "failed" and summary["retrained"] is True
    assert summary["model_version"] == "7"
    assert "blocked by the gate" in err
    events = [json.loads(request.data)["event"] for request, _ in httpserver.log]
    assert events == ["gate", "blocked"]


def test_register_only_keeps_the_version_and_audits_it(project, mlflow_store, model_name, run_cli, clean_env):
    version = mlflow_store.add_version(model_name)
    project.write_data({"model": {"name": model_name}, "mlflow": {"tracking-uri": mlflow_store.uri}})
    _gate_env(clean_env, model_name, version)

    code, out, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 0, err
    summary = _summary(project)
    assert summary["outcome"] == "registered" and summary["on_pass"] == "register-only"
    assert summary["model_version"] == version and summary["run_id"] == "run-123"
    tags = mlflow_store.version_tags(model_name, version)
    assert tags["mlci.retrain.outcome"] == "registered"
    assert tags["mlci.retrain.reason"].startswith("data drift detected")
    trail = Registry(mlflow_store.uri).audit_trail(model_name, version)
    assert trail[-1]["event"] == "retrain" and trail[-1]["outcome"] == "registered"
    assert "champion" not in mlflow_store.aliases(model_name), "register-only moves no marker"
    assert f"{model_name} v{version} is registered" in out


def test_a_version_the_gate_did_not_validate_is_flagged(project, mlflow_store, model_name, run_cli, clean_env):
    version = mlflow_store.add_version(model_name, validated=False)
    project.write_data({"model": {"name": model_name}, "mlflow": {"tracking-uri": mlflow_store.uri}})
    _gate_env(clean_env, model_name, version)

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 0
    assert "no mlci.validated=true tag" in err
    assert _summary(project)["warnings"]


def test_a_version_missing_from_the_registry_is_an_external_error(
    project, mlflow_store, model_name, run_cli, clean_env
):
    mlflow_store.add_version(model_name)
    project.write_data({"model": {"name": model_name}, "mlflow": {"tracking-uri": mlflow_store.uri}})
    _gate_env(clean_env, model_name, "99")

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 3, err
    assert "99" in err
    assert _summary(project)["outcome"] == "error"


def test_without_a_gate_verdict_conclude_explains_the_wiring(project, run_cli):
    project.write_data({"model": {"name": "churn"}})

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 2
    assert "MLCI_GATE is not set" in err and "needs: [mlci-gate]" in err


def _mr_config(project, store, model: str) -> None:
    project.write_data({
        "model": {"name": model},
        "mlflow": {"tracking-uri": store.uri},
        "retrain": {"on-pass": "merge-request"},
    })


def test_merge_request_is_opened_once_and_updated_once(
    project, mlflow_store, model_name, run_cli, clean_env, fake_gitlab
):
    for key, value in fake_gitlab.env(CI_COMMIT_BRANCH="main", CI_COMMIT_SHA="main").items():
        clean_env.setenv(key, value)
    _mr_config(project, mlflow_store, model_name)

    # First scheduled run: no report job output, so the description is generated (with the gate's table).
    first = mlflow_store.add_version(model_name)
    _gate_env(clean_env, model_name, first)
    project.out.mkdir()
    (project.out / "gate.md").write_text("| metric | value |\n|---|---|\n| accuracy | 0.91 |\n")
    code, out, err = run_cli(*project.cli("retrain", "conclude"))
    assert code == 0, err
    summary = _summary(project)
    assert summary["outcome"] == "merge-request"
    assert summary["action"]["merge_request"]["action"] == "created"
    assert summary["action"]["merge_request"]["description_source"] == "generated"

    # Second run, a newer version and now the report job's report.md: the same MR is updated.
    second = mlflow_store.add_version(model_name)
    _gate_env(clean_env, model_name, second)
    (project.out / "report.md").write_text(
        "## Model report\n\naccuracy 0.93 (+0.02)\n\n![ROC curve](report-plots/roc.png)\n"
    )
    (project.out / "report-plots").mkdir()
    (project.out / "report-plots" / "roc.png").write_bytes(b"\x89PNG\r\n\x1a\n fake png")
    code, out, err = run_cli(*project.cli("retrain", "conclude"))
    assert code == 0, err
    assert _summary(project)["action"]["merge_request"]["action"] == "updated"

    mrs = fake_gitlab.state()["merge_requests"]
    assert len(mrs) == 1, "one open merge request per model"
    [mr] = mrs
    assert mr["title"] == f"Retrained model {model_name} v{second}"
    assert mr["source_branch"] == f"mlci/retrain/{model_name}" and mr["target_branch"] == "main"
    assert "accuracy 0.93 (+0.02)" in mr["description"]
    # The report's plot is uploaded to the instance and linked absolutely, not left as a relative path.
    [upload] = fake_gitlab.state()["uploads"]
    assert "report-plots/roc.png" not in mr["description"]
    assert f"![ROC curve]({fake_gitlab.url}/" in mr["description"] and upload["secret"] in mr["description"]
    assert len(fake_gitlab.requests_to("POST", r"/merge_requests$")) == 1
    assert len(fake_gitlab.requests_to("PUT", r"/merge_requests/\d+$")) == 1
    assert len(fake_gitlab.requests_to("POST", r"/repository/branches$")) == 1
    assert f"updated merge request !{mr['iid']}" in out


def test_generated_description_carries_reasons_and_gate_table(
    project, mlflow_store, model_name, run_cli, clean_env, fake_gitlab
):
    for key, value in fake_gitlab.env(CI_COMMIT_BRANCH="main", CI_COMMIT_SHA="main").items():
        clean_env.setenv(key, value)
    _mr_config(project, mlflow_store, model_name)
    version = mlflow_store.add_version(model_name)
    _gate_env(clean_env, model_name, version)
    project.out.mkdir()
    (project.out / "gate.md").write_text("| accuracy | 0.91 |\n")

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 0, err
    [mr] = fake_gitlab.state()["merge_requests"]
    assert "data drift detected" in mr["description"]
    assert "| accuracy | 0.91 |" in mr["description"]
    assert f"--version {version}" in mr["description"]


def test_gitlab_refusing_the_token_exits_3_and_records_the_error(
    project, mlflow_store, model_name, run_cli, clean_env, fake_gitlab
):
    for key, value in fake_gitlab.env(CI_COMMIT_BRANCH="main", MLCI_GITLAB_TOKEN="glpat-revokedrevoked00").items():
        clean_env.setenv(key, value)
    _mr_config(project, mlflow_store, model_name)
    version = mlflow_store.add_version(model_name)
    _gate_env(clean_env, model_name, version)

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 3, err
    assert "401" in err and fake_gitlab.url in err
    assert "glpat-revokedrevoked00" not in err
    summary = _summary(project)
    assert summary["outcome"] == "error" and "merge-request failed" in summary["message"]
    assert fake_gitlab.state()["merge_requests"] == []


def test_merge_request_without_any_target_branch_is_a_located_config_error(
    project, mlflow_store, model_name, run_cli, clean_env, fake_gitlab
):
    env = fake_gitlab.env()
    env.pop("CI_DEFAULT_BRANCH")
    for key, value in env.items():
        clean_env.setenv(key, value)
    _mr_config(project, mlflow_store, model_name)
    version = mlflow_store.add_version(model_name)
    _gate_env(clean_env, model_name, version)

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 2
    assert "mlci.yml:" in err and "target-branch" in err


@pytest.mark.parametrize(
    ("model", "branch"),
    [("churn", "mlci/retrain/churn"), ("Churn Model v2", "mlci/retrain/Churn-Model-v2"),
     ("a..b/../c.lock/.x", "mlci/retrain/a-b/c-lock/x"), ("~^:?*[\\", "mlci/retrain/model")],
)
def test_branch_names_are_git_safe(model, branch):
    from mlci.retrain.conclude import branch_name

    assert branch_name("mlci/retrain/", model) == branch


def _promote_config(project, store, model: str, command: str) -> None:
    project.write_data({
        "model": {"name": model},
        "mlflow": {"tracking-uri": store.uri},
        "deploy": {"environments": [
            {"name": "staging", "target": "command", "command": command},
            {"name": "production", "target": "command", "command": "exit 99"},
        ]},
        "retrain": {"on-pass": "promote-staging"},
    })


def test_promote_staging_deploys_the_first_environment_only(
    project, mlflow_store, model_name, run_cli, clean_env
):
    deployed = project.root / "deployed.txt"
    _promote_config(project, mlflow_store, model_name, f'echo "$MLCI_MODEL_URI" > {deployed}')
    old = mlflow_store.add_version(model_name, champion=True)
    version = mlflow_store.add_version(model_name)
    _gate_env(clean_env, model_name, version)

    code, out, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 0, err
    assert deployed.read_text().strip() == f"models:/{model_name}/{version}"
    aliases = mlflow_store.aliases(model_name)
    assert aliases["staging"] == version
    assert aliases["champion"] == old and "production" not in aliases, "production stays manual"
    summary = _summary(project)
    assert summary["outcome"] == "promoted" and summary["action"]["environment"] == "staging"
    assert (project.out / "deploy-staging.json").exists()
    assert f"promoted {model_name} v{version} to staging" in out


def test_promote_staging_refuses_a_version_the_gate_did_not_validate(
    project, mlflow_store, model_name, run_cli, clean_env
):
    deployed = project.root / "deployed.txt"
    _promote_config(project, mlflow_store, model_name, f"touch {deployed}")
    version = mlflow_store.add_version(model_name, validated=False)
    _gate_env(clean_env, model_name, version)

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 1
    assert "not validated" in err
    assert not deployed.exists() and "staging" not in mlflow_store.aliases(model_name)
    assert _summary(project)["outcome"] == "error"


def test_promote_staging_with_a_failing_deploy_moves_nothing(project, mlflow_store, model_name, run_cli, clean_env):
    _promote_config(project, mlflow_store, model_name, "echo cannot reach cluster >&2; exit 4")
    version = mlflow_store.add_version(model_name)
    _gate_env(clean_env, model_name, version)

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 1
    assert "exited with code 4" in err
    assert "staging" not in mlflow_store.aliases(model_name)
    summary = _summary(project)
    assert summary["outcome"] == "error" and "promote-staging failed" in summary["message"]


def test_only_local_report_images_are_rewritten():
    from mlci.retrain.conclude import local_images, replace_images

    text = ("![roc](report-plots/roc.png) ![ext](https://cdn.example.com/a.png) ![up](../../etc/passwd) "
            "![abs](/etc/hosts) ![roc again](report-plots/roc.png)")
    assert local_images(text) == ["report-plots/roc.png"]
    rewritten = replace_images(text, {"report-plots/roc.png": "https://gitlab.example.com/uploads/x/roc.png"})
    assert rewritten.count("https://gitlab.example.com/uploads/x/roc.png") == 2
    assert "](../../etc/passwd)" in rewritten and "](https://cdn.example.com/a.png)" in rewritten


def test_promote_staging_never_auto_deploys_the_only_environment(
    project, mlflow_store, model_name, run_cli, clean_env
):
    deployed = project.root / "deployed.txt"
    project.write_data({
        "model": {"name": model_name},
        "mlflow": {"tracking-uri": mlflow_store.uri},
        "deploy": {"environments": [{"name": "production", "target": "command", "command": f"touch {deployed}"}]},
        "retrain": {"on-pass": "promote-staging"},
    })
    version = mlflow_store.add_version(model_name)
    _gate_env(clean_env, model_name, version)

    code, _, err = run_cli(*project.cli("retrain", "conclude"))

    assert code == 2
    assert "has only 'production'" in err and "mlci.yml:" in err
    assert not deployed.exists() and "champion" not in mlflow_store.aliases(model_name)
