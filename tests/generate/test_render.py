"""The rendered templates: structure, GitLab schema validity, and the keywords each stage promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlci.generate.stages import STAGE_ORDER

STAGE_FILES = [f"mlci-{stage}.yml" for stage in STAGE_ORDER]


def split(text: str) -> tuple[dict, dict]:
    header, body = yaml.safe_load_all(text)
    return header, body


def resolved(text: str, tmp_path: Path, inputs: dict | None = None) -> dict:
    """The template's body after interpolation (defaults + `inputs`), extends and default: (what a runner gets)."""
    from mlci.lint.resolve import load_pipeline

    path = tmp_path / "template.yml"
    path.write_text(text)
    pipeline = load_pipeline(path, root=tmp_path, inputs=inputs)
    assert not [f for f in pipeline.findings if f.severity == "error"], pipeline.findings
    return pipeline.jobs


def test_every_stage_has_a_template_and_all_includes_each_once(rendered):
    assert sorted(rendered) == sorted([*STAGE_FILES, "mlci-all.yml"])
    _, body = split(rendered["mlci-all.yml"])
    assert [entry["local"] for entry in body["include"]] == [f"ci_templates/{name}" for name in STAGE_FILES]


@pytest.mark.parametrize("name", STAGE_FILES)
def test_template_shape_header_then_jobs_extending_the_hidden_base(rendered, manifests, name):
    text = rendered[name]
    assert text.count("\n---\n") == 1, "a spec header, one separator, then the jobs"
    header, body = split(text)
    manifest = manifests.by_name(name.removeprefix("mlci-").removesuffix(".yml"))
    assert list(header) == ["spec"]
    assert list(header["spec"]["inputs"]) == list(manifest.inputs)
    for input_name, entry in header["spec"]["inputs"].items():
        assert input_name == input_name.lower() and "_" not in input_name, "inputs are kebab-case"
        assert entry["type"] in ("string", "number", "boolean", "array")
        assert entry["description"]
    jobs = [key for key in body if not key.startswith(".") and key != "variables"]
    assert jobs == list(manifest.jobs)
    # mlci-<stage>[-<feature>]; the deploy stage's two other jobs are named for what they do.
    named_by_role = {"mlci-smoke-test", "mlci-rollback-production"}
    assert all(job.startswith(f"mlci-{manifest.name}") or job in named_by_role for job in jobs)
    assert ".mlci-base" in body, "every template works alone, so each carries the hidden base"
    for job in jobs:
        if "trigger" in body[job]:
            continue
        assert body[job]["extends"][0] == ".mlci-base"


@pytest.mark.parametrize("name", STAGE_FILES)
def test_every_variable_form_is_set_from_its_input(rendered, manifests, name):
    _header, body = split(rendered[name])
    manifest = manifests.by_name(name.removeprefix("mlci-").removesuffix(".yml"))
    expected = {spec.variable: f"$[[ inputs.{spec.name} ]]" for spec in manifest.inputs.values()
                if spec.variable and spec.variable.startswith("MLCI_")}
    assert body.get("variables", {}) == expected
    for variable in expected:
        assert variable.startswith(f"MLCI_{manifest.name.upper()}_")


def test_hidden_base_is_identical_in_every_template_so_merging_them_is_a_no_op(rendered):
    bases = {name: split(rendered[name])[1][".mlci-base"] for name in STAGE_FILES}
    installs = {name: split(rendered[name])[1][".mlci-install"] for name in STAGE_FILES}
    assert len({yaml.safe_dump(b) for b in bases.values()}) == 1
    assert len({yaml.safe_dump(i) for i in installs.values()}) == 1


@pytest.mark.parametrize("name", STAGE_FILES)
def test_job_scripts_only_call_mlci(rendered, tmp_path, name):
    for job_name, job in resolved(rendered[name], tmp_path).items():
        for line in job.get("script", []):
            assert line.startswith("mlci "), f"{job_name}: {line}"


def test_every_job_runs_the_install_step_with_its_mode_requirement_index_and_extra(rendered, tmp_path):
    from mlci import __version__
    from mlci.generate.install import install_step

    gate = resolved(rendered["mlci-gate.yml"], tmp_path)["mlci-gate"]
    assert gate["before_script"] == [install_step()]
    assert {k: gate["variables"][k] for k in ("MLCI_INSTALL", "MLCI_INSTALL_SPEC", "MLCI_INDEX_URL", "MLCI_EXTRA",
                                               "MLCI_VERSION")} == {
        "MLCI_INSTALL": "auto", "MLCI_INSTALL_SPEC": "$MLCI_GATE_INSTALL_SPEC",
        "MLCI_INDEX_URL": "$MLCI_GATE_INDEX_URL", "MLCI_EXTRA": "gate", "MLCI_VERSION": __version__}
    skip = resolved(rendered["mlci-gate.yml"], tmp_path, {"install": "preinstalled"})["mlci-gate"]
    assert skip["variables"]["MLCI_INSTALL"] == "preinstalled"


@pytest.mark.parametrize("name", STAGE_FILES)
def test_each_job_installs_the_extra_its_command_needs(rendered, tmp_path, name):
    from mlci.extras import COMMAND_EXTRAS

    for job_name, job in resolved(rendered[name], tmp_path).items():
        if "script" not in job:
            continue
        words = job["script"][0].split()
        key = " ".join(words[1:3]) if words[1] in ("data",) else words[1]
        expected = COMMAND_EXTRAS.get(key, "")
        assert job["variables"]["MLCI_EXTRA"] == expected, (job_name, key)


def test_the_index_default_is_the_hosting_projects_pypi_registry_read_with_the_job_token(rendered):
    header, body = split(rendered["mlci-data.yml"])
    default = header["spec"]["inputs"]["index-url"]["default"]
    assert default == ("${CI_SERVER_PROTOCOL}://gitlab-ci-token:${CI_JOB_TOKEN}@${CI_SERVER_FQDN}/api/v4/projects/"
                       "mlci%2Fmlci/packages/pypi/simple")
    assert body["variables"]["MLCI_DATA_INDEX_URL"] == "$[[ inputs.index-url ]]"


def test_catalog_components_pin_their_own_release_and_local_files_do_not(rendered, rendered_catalog):
    for name in ("data.yml", "train.yml", "deploy.yml"):
        header, body = split(rendered_catalog[name])
        assert header["spec"]["component"] == ["version"]
        assert body[".mlci-install"]["variables"]["MLCI_COMPONENT_VERSION"] == "$[[ component.version ]]"
    header, body = split(rendered["mlci-data.yml"])
    assert "component" not in header["spec"]
    assert "MLCI_COMPONENT_VERSION" not in body[".mlci-install"]["variables"]


def test_data_jobs_report_to_the_test_widget_and_drift_only_with_a_reference(rendered, tmp_path):
    jobs = resolved(rendered["mlci-data.yml"], tmp_path, {"allow-failure": True})
    check = jobs["mlci-data-check"]
    assert check["allow_failure"] is True
    assert check["artifacts"]["reports"]["junit"] == "mlci-out/data-check.junit.xml"
    assert check["artifacts"]["expose_as"] and "mlci-out/data-check.md" in check["artifacts"]["paths"]
    assert check["script"] == ['mlci data check --contract "$MLCI_DATA_CONTRACT" $MLCI_DATA_PATHS']
    drift = jobs["mlci-data-drift"]
    assert drift["artifacts"]["reports"]["dotenv"] == "mlci-out/drift.env"
    assert drift["rules"][-1] == {"if": "$MLCI_DATA_DRIFT_REFERENCE"}, "created only when a reference is set"


def test_train_job_is_bounded_retried_and_routed_to_gpu_runners(rendered, tmp_path):
    train = resolved(rendered["mlci-train.yml"], tmp_path)["mlci-train"]
    assert train["tags"] == ["gpu"]
    assert train["timeout"] == "3h"
    assert train["interruptible"] is True
    assert train["retry"] == {"max": 2, "when": ["runner_system_failure", "stuck_or_timeout_failure"]}
    assert train["variables"]["KUBERNETES_CPU_REQUEST"] == "4"
    assert train["variables"]["KUBERNETES_MEMORY_REQUEST"] == "16Gi"
    assert train["variables"]["MLCI_MLFLOW_TRACKING_URI"] == "$MLCI_TRAIN_MLFLOW_TRACKING_URI"
    assert {c["key"]: c["paths"] for c in train["cache"]}["mlci-train"] == [".cache/pip/", ".cache/datasets/"]
    assert train["artifacts"]["reports"]["dotenv"] == "mlci-out/train.env"
    assert "parallel" not in train
    assert train["needs"] == [{"job": "mlci-data-check", "optional": True, "artifacts": False}]


def test_train_sweep_adds_a_matrix_and_the_select_job(rendered, tmp_path):
    matrix = [{"LR": ["0.1", "0.01"], "DEPTH": "3"}]
    jobs = resolved(rendered["mlci-train.yml"], tmp_path,
                    {"sweep": True, "matrix": matrix, "tags": ["a100"], "timeout": "6h", "interruptible": False})
    assert jobs["mlci-train"]["parallel"] == {"matrix": matrix}
    assert jobs["mlci-train"]["tags"] == ["a100"] and jobs["mlci-train"]["timeout"] == "6h"
    assert jobs["mlci-train"]["interruptible"] is False
    select = jobs["mlci-train-select"]
    assert select["script"] == ["mlci train-select"]
    assert select["needs"] == [{"job": "mlci-train", "artifacts": False}]
    assert select["rules"][-1] == {"when": "on_success"}
    no_sweep = resolved(rendered["mlci-train.yml"], tmp_path)["mlci-train-select"]
    assert no_sweep["rules"] == [{"when": "never"}], "without a sweep the select job never enters a pipeline"


def test_gate_reports_junit_metrics_dotenv_and_warn_only_never_blocks(rendered, tmp_path):
    gate = resolved(rendered["mlci-gate.yml"], tmp_path)["mlci-gate"]
    assert gate["artifacts"]["reports"] == {
        "junit": "mlci-out/gate.junit.xml", "metrics": "mlci-out/gate.metrics.txt", "dotenv": "mlci-out/gate.env",
    }
    assert gate["needs"] == [{"job": "mlci-train", "artifacts": True, "optional": True},
                             {"job": "mlci-optimize", "artifacts": False, "optional": True}]
    assert gate["allow_failure"] is False and "MLCI_GATE_WARN_ONLY" not in gate["variables"]
    warn = resolved(rendered["mlci-gate.yml"], tmp_path, {"warn-only": True, "train-job": "mlci-train-select"})
    assert warn["mlci-gate"]["allow_failure"] is True
    assert warn["mlci-gate"]["variables"]["MLCI_GATE_WARN_ONLY"] == "true"
    assert warn["mlci-gate"]["needs"][0]["job"] == "mlci-train-select"


def test_report_runs_on_merge_requests_only_and_a_gitlab_outage_does_not_block(rendered, tmp_path):
    report = resolved(rendered["mlci-report.yml"], tmp_path)["mlci-report"]
    assert report["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "always"}]
    assert report["allow_failure"] == {"exit_codes": [3]}
    assert report["needs"][0] == {"job": "mlci-gate", "artifacts": True, "optional": True}
    # train.json (written by mlci train) is what the report's training telemetry section shows.
    assert {n["job"] for n in report["needs"][1:]} == {
        "mlci-train", "mlci-data-check", "mlci-data-drift", "mlci-runners-render", "mlci-optimize"}
    assert all(n["optional"] and n["artifacts"] for n in report["needs"][1:])
    sweep = resolved(rendered["mlci-report.yml"], tmp_path, {"train-job": "mlci-train-select"})["mlci-report"]
    assert {"job": "mlci-train-select", "artifacts": True, "optional": True} in sweep["needs"]
    assert report["artifacts"]["expose_as"] and report["artifacts"]["paths"][0] == "mlci-out/report.md"


def test_deploy_jobs_are_staged_serialised_and_production_is_manual(rendered, tmp_path):
    jobs = resolved(rendered["mlci-deploy.yml"], tmp_path)
    staging, smoke = jobs["mlci-deploy-staging"], jobs["mlci-smoke-test"]
    production, rollback = jobs["mlci-deploy-production"], jobs["mlci-rollback-production"]
    assert staging["rules"][-1] == {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}
    assert staging["environment"] == {"name": "staging", "deployment_tier": "staging", "url": "$MLCI_DEPLOY_URL"}
    assert smoke["needs"] == [{"job": "mlci-deploy-staging", "artifacts": True}]
    assert smoke["script"] == ["mlci smoke-test --env staging"]
    assert production["environment"] == {"name": "production", "deployment_tier": "production",
                                         "url": "$MLCI_DEPLOY_URL"}
    assert production["rules"][-1] == {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH || $CI_COMMIT_TAG",
                                       "when": "manual"}
    # It deploys the version the gate blessed: the gate's dotenv, not staging's.
    assert production["needs"][0] == {"job": "mlci-gate", "artifacts": True, "optional": True}
    assert production["needs"][1]["artifacts"] is False
    assert rollback["environment"]["action"] == "start" and rollback["rules"][-1]["when"] == "manual"
    assert {staging["resource_group"], production["resource_group"], rollback["resource_group"]} == {
        "staging", "production"}
    assert rollback["resource_group"] == "production"
    assert all(job["interruptible"] is False for job in (staging, production, rollback))
    assert "secrets" not in production


def test_deploy_credentials_from_vault_add_an_id_token_and_the_secret(rendered, tmp_path):
    jobs = resolved(rendered["mlci-deploy.yml"], tmp_path, {
        "credentials": "vault", "vault-secret": "ml/prod/deploy@kv", "production-environment": "prod"})
    production = jobs["mlci-deploy-production"]
    assert production["secrets"] == {"MLCI_DEPLOY_CREDENTIALS": {
        "vault": "ml/prod/deploy@kv", "token": "$MLCI_VAULT_ID_TOKEN", "file": False}}
    assert production["id_tokens"] == {"MLCI_VAULT_ID_TOKEN": {"aud": "$VAULT_SERVER_URL"}}
    assert production["environment"]["name"] == "prod" and production["resource_group"] == "prod"
    assert production["script"] == ['mlci deploy --to prod --version "$MLCI_MODEL_VERSION"']


def test_retrain_jobs_chain_to_a_child_pipeline_that_the_parent_waits_for(rendered, tmp_path):
    jobs = resolved(rendered["mlci-retrain.yml"], tmp_path, {"fetch-command": "python fetch.py --days 7"})
    assert list(jobs) == ["mlci-retrain-fetch-data", "mlci-retrain-data-check", "mlci-retrain-data-drift",
                          "mlci-retrain-decide", "mlci-retrain-run"]
    retrain_rule = [{"if": '$MLCI_PIPELINE == "monitor"', "when": "never"},
                    {"if": '$CI_PIPELINE_SOURCE == "schedule" || $MLCI_PIPELINE == "retrain"'}]
    assert all(job["rules"] == retrain_rule for job in jobs.values())
    assert jobs["mlci-retrain-fetch-data"]["script"] == ["mlci hook fetch-data -- $MLCI_RETRAIN_FETCH_COMMAND"]
    assert jobs["mlci-retrain-data-drift"]["script"] == [
        'mlci data drift --reference "$MLCI_RETRAIN_DRIFT_REFERENCE" $MLCI_RETRAIN_PATHS']
    decide = jobs["mlci-retrain-decide"]
    assert decide["script"][0].startswith("mlci retrain decide --image ")
    assert "--setup-command" not in decide["script"][0], "decide writes the install step itself"
    assert decide["artifacts"]["reports"]["dotenv"] == "mlci-out/retrain.env"
    run = jobs["mlci-retrain-run"]
    assert run["trigger"]["include"] == [{"artifact": "mlci-out/retrain-pipeline.yml", "job": "mlci-retrain-decide"}]
    assert run["trigger"]["strategy"] == "depend"
    assert "script" not in run and "extends" not in run


def test_other_templates_stay_out_of_retrain_pipelines(rendered, tmp_path):
    never = {"if": '$CI_PIPELINE_SOURCE == "schedule" || $MLCI_PIPELINE == "retrain" || $MLCI_PIPELINE == "monitor"',
             "when": "never"}
    for name in ("mlci-data.yml", "mlci-train.yml", "mlci-gate.yml", "mlci-deploy.yml"):
        for job_name, job in resolved(rendered[name], tmp_path).items():
            if job["rules"] == [{"when": "never"}]:
                continue
            assert job["rules"][0] == never, f"{job_name} must not run in retrain pipelines"


def test_the_monitor_job_runs_only_in_monitoring_pipelines(rendered, tmp_path):
    jobs = resolved(rendered["mlci-monitor.yml"], tmp_path, {"auto-rollback": True})
    assert list(jobs) == ["mlci-monitor"]
    job = jobs["mlci-monitor"]
    assert job["rules"] == [{"if": '$MLCI_PIPELINE == "monitor"'}]
    assert job["script"] == ['mlci monitor --env "$MLCI_MONITOR_ENVIRONMENT" --auto-rollback true']
    assert job["resource_group"] == "$MLCI_MONITOR_ENVIRONMENT"
    assert job["artifacts"]["reports"]["dotenv"] == "mlci-out/monitor-$MLCI_MONITOR_ENVIRONMENT.env"


def _with_defaults(text: str, tmp_path: Path) -> tuple[dict, dict]:
    """Header and body as GitLab sees them with the default inputs (the schema wants real booleans)."""
    from mlci.lint.resolve import load_pipeline

    header, _ = split(text)
    path = tmp_path / "t.yml"
    path.write_text(text)
    pipeline = load_pipeline(path, root=tmp_path)
    body = {k: v for k, v in pipeline.data.items() if k != "include"} if "include" not in split(text)[1] else \
        pipeline.data
    return header, body


def test_every_template_validates_against_gitlabs_schema_with_check_jsonschema(rendered, rendered_catalog, tmp_path):
    """check-jsonschema's vendored GitLab schema, header and body checked separately (it rejects 2 documents)."""
    files = []
    for layout, texts in (("local", rendered), ("catalog", rendered_catalog)):
        for name, text in texts.items():
            header, body = _with_defaults(text, tmp_path)
            for part, data in (("header", header), ("body", body)):
                path = tmp_path / layout / f"{name}.{part}.yml"
                path.parent.mkdir(exist_ok=True)
                path.write_text(yaml.safe_dump(data, sort_keys=False))
                files.append(str(path))
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci", *files],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(files) == 2 * 2 * len(rendered)  # two layouts, header and body of each template


def test_check_jsonschema_really_rejects_a_broken_body(tmp_path):
    """The schema check above can fail: a wrong type in a job is caught."""
    path = tmp_path / "bad.yml"
    path.write_text("mlci-train:\n  script: [mlci train]\n  interruptible: 'yes'\n  timeout: 3\n")
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 1 and "interruptible" in done.stdout + done.stderr
