"""Each ML rule fires on a bad example, at the line to fix, and stays quiet once it is fixed."""

from __future__ import annotations

from tests.lint.conftest import found


def test_gpu_job_without_timeout_or_interruptible(repo):
    result = repo.lint("""\
        train:
          image: python:3.12-slim
          tags: [docker, nvidia-gpu]
          script: [mlci train]
        """)
    [finding] = found(result, "gpu-job-unbounded")
    assert (finding.file, finding.line, finding.severity) == (".gitlab-ci.yml", 3, "error")
    assert "timeout and interruptible" in finding.message and finding.job == "train"
    assert not result.ok

    fixed = repo.lint("""\
        train:
          image: python:3.12-slim
          tags: [docker, nvidia-gpu]
          timeout: 2h
          interruptible: true
          script: [mlci train]
        """)
    assert fixed.findings == []


def test_gpu_settings_inherited_from_a_template_or_default_count(repo):
    result = repo.lint("""\
        default:
          timeout: 1h
        .gpu:
          tags: [gpu]
          interruptible: false
        train:
          extends: .gpu
          image: python:3.12-slim
          script: [mlci train]
        half:
          extends: .gpu
          image: python:3.12-slim
          timeout: 1h
          inherit: {default: false}
          script: [mlci train]
        nothing:
          tags: [gpu]
          image: python:3.12-slim
          inherit: {default: false}
          script: [mlci train]
        """)
    findings = found(result, "gpu-job-unbounded")
    assert [(f.job, f.line) for f in findings] == [("nothing", 17)]
    assert "without timeout and interruptible" in findings[0].message


def test_production_deploy_without_manual_resource_group_or_environment(repo):
    result = repo.lint("""\
        deploy-prod:
          image: python:3.12-slim
          script: [mlci deploy --to production]
        release:
          image: python:3.12-slim
          environment: {name: production}
          resource_group: production
          script: [mlci deploy --to production]
          rules:
            - if: $CI_COMMIT_TAG
              when: manual
            - if: $CI_COMMIT_BRANCH == "main"
        smoke:
          image: python:3.12-slim
          environment: {name: production, action: verify}
          script: [mlci smoke-test --env production]
        """)
    findings = {f.job: f for f in found(result, "production-deploy-unguarded")}
    assert set(findings) == {"deploy-prod", "release"}
    assert "when: manual" in findings["deploy-prod"].message
    assert "resource_group" in findings["deploy-prod"].message and "environment" in findings["deploy-prod"].message
    assert findings["deploy-prod"].line == 1
    assert "when: manual" in findings["release"].message and "resource_group" not in findings["release"].message
    assert findings["release"].line == 6, "points at the environment that makes it a production deploy"

    fixed = repo.lint("""\
        deploy-prod:
          image: python:3.12-slim
          environment: {name: production, deployment_tier: production}
          resource_group: production
          when: manual
          script: [mlci deploy --to production]
        """)
    assert found(fixed, "production-deploy-unguarded") == []


def test_production_recognised_by_deployment_tier_whatever_the_name(repo):
    result = repo.lint("""\
        ship:
          image: python:3.12-slim
          environment: {name: eu-live-1, deployment_tier: production}
          script: [mlci deploy --to eu-live-1]
        """)
    assert [f.job for f in found(result, "production-deploy-unguarded")] == ["ship"]


def test_image_latest_or_untagged_is_a_warning_resolving_yaml_variables(repo):
    result = repo.lint("""\
        variables:
          TRAIN_IMAGE: pytorch/pytorch
        a:
          image: python:latest
          script: [mlci data check]
        b:
          image: {name: registry.example.com:5000/ml/base}
          script: [mlci data check]
        c:
          image: $TRAIN_IMAGE
          script: [mlci data check]
        d:
          image: registry.example.com:5000/ml/base:1.2
          script: [mlci data check]
        e:
          image: python@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
          script: [mlci data check]
        f:
          image: $FROM_PROJECT_SETTINGS
          script: [mlci data check]
        """)
    findings = {f.job: f for f in found(result, "image-unpinned")}
    assert set(findings) == {"a", "b", "c"}
    assert all(f.severity == "warning" for f in findings.values())
    assert "uses the :latest tag" in findings["a"].message
    assert "has no tag" in findings["b"].message
    assert "$TRAIN_IMAGE (= pytorch/pytorch)" in findings["c"].message
    assert (findings["a"].line, findings["c"].line) == (4, 10)
    assert result.ok, "warnings alone do not fail the lint"


def test_token_looking_literals_in_variables_are_errors_and_never_echoed(repo):
    token = "glpat-" + "x1Y2z3" * 4
    result = repo.lint(f"""\
        variables:
          GITLAB_API: {token}
          MODEL_NAME: churn
          TOKEN_VARIABLE: MLCI_GITLAB_TOKEN
        train:
          image: python:3.12-slim
          script: [mlci train]
          variables:
            HF_TOKEN: hf_{"a" * 34}
            DB_PASSWORD: Sup3rSecretValue99
            WANDB_API_KEY: $WANDB_KEY_FROM_SETTINGS
          rules:
            - if: $CI_COMMIT_TAG
              variables:
                AWS_ACCESS_KEY_ID: AKIAABCDEFGHIJKLMNOP
        """)
    findings = found(result, "token-literal")
    assert [(f.line, f.severity) for f in findings] == [(2, "error"), (9, "error"), (10, "error"), (15, "error")]
    assert "GITLAB_API holds what looks like a GitLab token" in findings[0].message
    assert "AWS access key" in findings[3].message
    from mlci.lint.output import as_codequality, as_json, as_text

    for render in (as_text, as_json, as_codequality):
        assert token not in render(result) and "Sup3rSecretValue99" not in render(result)


def test_needs_naming_a_missing_or_hidden_job(repo):
    result = repo.lint("""\
        .template:
          script: [echo]
        gate:
          image: python:3.12-slim
          script: [mlci gate]
          needs:
            - trian
            - job: .template
            - job: maybe
              optional: true
            - pipeline: $PARENT_PIPELINE_ID
              job: upstream
        report:
          image: python:3.12-slim
          script: [mlci report]
          needs: [gate]
          dependencies: [gone]
        """)
    findings = found(result, "needs-unknown-job")
    assert [(f.job, f.line) for f in findings] == [("gate", 7), ("gate", 8), ("report", 17)]
    assert "needs 'trian': no such job" in findings[0].message
    assert "hidden template" in findings[1].message
    assert "dependencies 'gone'" in findings[2].message


def test_needs_on_a_job_from_an_unchecked_include_is_only_a_warning(repo):
    result = repo.lint("""\
        include:
          - project: ml/shared-ci
            file: train.yml
        gate:
          image: python:3.12-slim
          script: [mlci gate]
          needs: [shared-train]
        """)
    [finding] = found(result, "needs-unknown-job")
    assert finding.severity == "warning" and "may come from an include" in finding.message
    assert [f.severity for f in found(result, "include-not-checked")] == ["info"]
    assert result.ok


def test_scheduled_work_without_a_schedule_rule(repo):
    result = repo.lint("""\
        nightly-retrain:
          image: python:3.12-slim
          script: [mlci train]
        weekly-report:
          image: python:3.12-slim
          script: [mlci report]
          rules:
            - if: $CI_PIPELINE_SOURCE == "schedule"
        retrain-legacy:
          image: python:3.12-slim
          script: [mlci train]
          only: [schedules]
        """)
    [finding] = found(result, "schedule-rule-missing")
    assert (finding.job, finding.line, finding.severity) == ("nightly-retrain", 1, "warning")
