"""`mlci monitor` as a user runs it: alert rules checked by promtool, exit codes, incidents once per episode."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from mlci.adapters.gitlab import GitLabClient
from tests.servers.prometheus import check_rules, free_port

CONFIG = """\
model:
  name: tumor
monitor:
  prometheus:
    url: {url}
  window: 10m
  rules:
    - name: error-rate
      preset: error-rate
      max: 0.02
    - name: p95 latency
      preset: latency-p95
      max: 0.25
      for: 5m
    - name: traffic floor
      preset: request-rate
      min: 0.5
      severity: warning
    - name: p95 regression
      preset: latency-p95
      regression: {{max-increase-pct: 50}}
deploy:
  environments: [{{name: staging}}, {{name: production}}]
"""


@pytest.fixture
def project(tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    (tmp_path / "mlci.yml").write_text(CONFIG.format(url=f"http://127.0.0.1:{free_port()}"))
    return tmp_path


def test_alert_rules_pass_promtool_and_follow_the_live_version(project, run_cli):
    code, _, err = run_cli("monitor", "--alert-rules", "rules.yml", "--check")
    assert code == 0, err
    assert check_rules(project / "rules.yml").returncode == 0
    document = yaml.safe_load((project / "rules.yml").read_text())
    assert [group["name"] for group in document["groups"]] == ["mlci-tumor-staging", "mlci-tumor-production"]
    rules = {rule["alert"]: rule for rule in document["groups"][1]["rules"]}
    assert set(rules) == {"MlciErrorRate", "MlciP95Latency", "MlciTrafficFloor"}, "regressions stay with mlci"
    latency = rules["MlciP95Latency"]
    assert latency["for"] == "5m" and latency["expr"].endswith("> 0.25")
    assert 'environment="production"' in latency["expr"] and "model_version" not in latency["expr"]
    assert rules["MlciTrafficFloor"]["expr"].endswith("< 0.5")
    assert rules["MlciTrafficFloor"]["labels"] == {"severity": "warning", "mlci_action": "rollback",
                                                    "model_name": "tumor", "environment": "production"}
    # a model that raises answers 400 under MLServer: the error rate counts 4xx as well as 5xx
    assert 'status_code=~"4..|5.."' in rules["MlciErrorRate"]["expr"]


def test_a_broken_rule_fails_the_promtool_check(project, run_cli):
    config = (project / "mlci.yml").read_text().replace("preset: error-rate", 'query: "sum(rate(x[$window]"')
    (project / "mlci.yml").write_text(config)
    code, _, err = run_cli("monitor", "--alert-rules", "rules.yml", "--check")
    assert code == 1 and "promtool rejected" in err


def test_a_rule_without_threshold_is_a_located_config_error(project, run_cli):
    config = (project / "mlci.yml").read_text().replace("      max: 0.02\n", "")
    (project / "mlci.yml").write_text(config)
    code, _, err = run_cli("monitor", "--alert-rules", "rules.yml")
    assert code == 2 and "mlci.yml:" in err and "no threshold" in err


def test_status_codes_on_a_rule_other_than_error_rate_is_a_located_config_error(project, run_cli):
    config = (project / "mlci.yml").read_text().replace("      for: 5m\n", "      for: 5m\n      status-codes: '5..'\n")
    (project / "mlci.yml").write_text(config)
    code, _, err = run_cli("monitor", "--alert-rules", "rules.yml")
    assert code == 2 and "mlci.yml:" in err and "only applies to the error-rate preset" in err


def registry_with_production(tmp_path, version_count: int = 1) -> str:
    """A sqlite registry where version 1 of `tumor` holds the production marker (no artifacts needed)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    client.create_registered_model("tumor")
    for _ in range(version_count):
        client.create_model_version("tumor", source=(tmp_path / "model").as_uri())
    client.set_registered_model_alias("tumor", "production", "1")
    return uri


def test_prometheus_unreachable_exits_3_with_the_url_and_a_hint(project, run_cli, tmp_path):
    uri = registry_with_production(tmp_path)
    (project / "mlci.yml").write_text((project / "mlci.yml").read_text() + f"mlflow:\n  tracking-uri: {uri}\n")
    code, _, err = run_cli("monitor", "--env", "production", "--dry-run",
                           "--prometheus-url", "http://user:pw-s3cret@127.0.0.1:9")
    assert code == 3, err
    assert "Prometheus http://127.0.0.1:9/api/v1/query" in err and "pw-s3cret" not in err
    assert "hint:" in err and "MLCI_MONITOR_PROMETHEUS_URL" in err


def test_nothing_deployed_is_no_data_not_ok(project, run_cli, tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    MlflowClient(uri, uri).create_registered_model("tumor")
    (project / "mlci.yml").write_text((project / "mlci.yml").read_text() + f"mlflow:\n  tracking-uri: {uri}\n")
    code, _, err = run_cli("monitor", "--env", "production", "--dry-run")
    assert code == 1 and "no version of tumor is deployed" in err
    assert "MLCI_MONITOR_DECISION=no-data" in (project / "mlci-out" / "monitor-production.env").read_text()
    code, _, err = run_cli("monitor", "--env", "canary")
    assert code == 2 and "unknown environment 'canary'" in err


def test_incidents_are_one_per_environment_and_episode(fake_gitlab):
    client = GitLabClient(url=fake_gitlab.url, project=fake_gitlab.project_id, token=fake_gitlab.token)

    def report(job: str):
        return client.upsert_incident(key="tumor:production", title="tumor in production: rollback",
                                      description="p95 regression", labels=["mlci::monitor"],
                                      note=f"still bad in job {job}", note_key=f"job-{job}")

    first = report("11")
    assert first.action == "created"
    assert report("11").action == "unchanged", "a retried job does not comment twice"
    assert report("12").action == "commented"
    assert report("12").action == "unchanged"
    other = client.upsert_incident(key="tumor:staging", title="tumor in staging", description="x", labels=[],
                                   note="x", note_key="job-12")
    assert other.iid != first.iid, "each environment has its own incident"
    issue = fake_gitlab.issues[first.iid]
    assert issue["issue_type"] == "incident" and issue["labels"] == ["mlci::monitor"]
    assert len(fake_gitlab.issue_notes[first.iid]) == 1
    # A human closes the incident: the episode is over, and the next bad verdict opens a new one.
    fake_gitlab.issues[first.iid]["state"] = "closed"
    assert report("13").action == "created"
    created = fake_gitlab.requests_to("POST", r"/issues$")
    assert all(r.json["issue_type"] == "incident" for r in created)


def test_incidents_need_reporter_access(fake_gitlab):
    from mlci.errors import ExternalServiceError
    from tests.fakes.gitlab_server import GUEST

    token = fake_gitlab.add_token("glpat-guest-0123456789abc", username="guest", access_level=GUEST)
    client = GitLabClient(url=fake_gitlab.url, project=fake_gitlab.project_id, token=token)
    with pytest.raises(ExternalServiceError) as caught:
        client.upsert_incident(key="tumor:production", title="t", description="d", labels=[], note="n",
                               note_key="job-1")
    assert caught.value.status == 403 and "Reporter" in caught.value.hint


def test_no_rules_and_no_drift_logs_is_a_config_error(tmp_path, clean_env, run_cli):
    clean_env.chdir(tmp_path)
    (tmp_path / "mlci.yml").write_text(textwrap.dedent("""\
        model: {name: tumor}
        deploy: {environments: [{name: production}]}
        """))
    code, _, err = run_cli("monitor", "--env", "production")
    assert code == 2 and "nothing to monitor" in err
