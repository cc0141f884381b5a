"""deploy.canary as a user writes it: defaults that work, and mistakes reported at their line in mlci.yml."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

BASE = """\
model:
  name: tumor
mlflow:
  tracking-uri: sqlite:///{root}/mlflow.db
deploy:
  environments:
    - name: staging
      target: mlserver
    - name: production
      target: {target}
{canary}
"""


def write(root, canary: str, target: str = "mlserver") -> None:
    (root / "mlci.yml").write_text(BASE.format(root=root, target=target, canary=textwrap.indent(canary, "  ")),
                                   encoding="utf-8")


@pytest.fixture(scope="module")
def registry_db(tmp_path_factory):
    """One MLflow database (creating its tables is the slow part): version 1 validated and in staging only."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(uri, uri)
    client.create_registered_model("tumor")
    client.create_model_version("tumor", (root / "model").as_uri())
    client.set_model_version_tag("tumor", "1", "mlci.validated", "true")
    client.set_registered_model_alias("tumor", "staging", "1")
    return root / "mlflow.db"


@pytest.fixture
def project(tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    return tmp_path


def test_defaults_give_a_ten_percent_nginx_canary_of_the_last_environment(project):
    from mlci.canary.settings import load_canary_settings
    from mlci.config import load_effective

    write(project, "")
    settings = load_canary_settings(load_effective(project / "mlci.yml"))
    assert settings.environment.name == "production" and settings.canary_environment == "production-canary"
    assert (settings.mode, settings.percent, settings.alpha, settings.power) == ("canary", 10.0, 0.05, 0.8)
    assert (settings.min_duration, settings.max_duration, settings.on_max_duration) == (600, 86400, "rollback")
    assert [(m.name, m.kind, m.status_codes) for m in settings.metrics] == [("error-rate", "error-rate", "4..|5..")]
    assert settings.router["type"] == "nginx" and settings.router["header"] == "X-Model-Version"
    assert settings.nginx_config_path() == project / ".mlci/serve/nginx/production.conf"


@pytest.mark.parametrize(("canary", "target", "where", "message"), [
    ("canary:\n  environment: prod\n", "mlserver", ":12:", "unknown environment 'prod'"),
    ("canary:\n  metrics:\n    - {name: slow, kind: latency, min-effect: 0.05}\n", "mlserver", ":13:",
     "needs `threshold`"),
    ("canary:\n  metrics:\n    - {name: x, kind: custom, min-effect: 0.05}\n", "mlserver", ":13:",
     "needs `events-query` (a Prometheus counter) or `outcomes`"),
    ("canary:\n  metrics:\n    - name: x\n      kind: error-rate\n      min-effect: 0.05\n"
     "      outcomes: {path: outcomes.parquet}\n", "mlserver", ":16:", "`outcomes` belongs to kind custom"),
    ("canary:\n  metrics:\n    - name: x\n      kind: custom\n      min-effect: 0.05\n"
     "      events-query: sum(orders_total{$selector})\n      outcomes: {path: outcomes.parquet}\n", "mlserver",
     ":17:", "not both"),
    ("canary:\n  metrics:\n    - name: x\n      kind: custom\n      min-effect: 0.05\n"
     "      outcomes: {path: outcomes.parquet, version-colum: v}\n", "mlserver", ":16:", "version-colum"),
    ("canary:\n  metrics:\n    - {name: e, min-effect: 0.01}\n    - {name: e, min-effect: 0.02}\n", "mlserver",
     ":14:", "listed twice"),
    ("canary:\n  router: {type: kserve}\n", "mlserver", ":12:", "needs target kubernetes"),
    ("canary:\n  min-duration: 2d\n  max-duration: 1d\n", "mlserver", ":12:", "longer than max-duration"),
    ("canary:\n  max-duration: 3 fortnights\n", "mlserver", ":12:", "fortnights"),
    ("canary:\n  percent: 100\n", "mlserver", ":12:", "100"),
    ("canary:\n  metrics:\n    - {name: e, min-effect: 1.5}\n", "mlserver", ":13:", "1.5"),
])
def test_mistakes_are_config_errors_at_their_line(project, run_cli, canary, target, where, message):
    write(project, canary, target)
    code, _, err = run_cli("canary", "analyze")
    assert code == 2, err
    assert "mlci.yml" + where in err and message in err, err


def test_nginx_router_needs_a_local_server_target(project, run_cli):
    write(project, "", target="command\n      command: [deploy.sh]")
    code, _, err = run_cli("canary", "start")
    assert code == 2 and "router nginx splits between local servers" in err, err


def test_analyze_without_an_experiment_says_how_to_start_one(project, run_cli, registry_db):
    shutil.copy(registry_db, project / "mlflow.db")
    write(project, "canary:\n  percent: 20\n")
    code, _, err = run_cli("canary", "analyze", "--env", "production")
    assert code == 2, err
    assert "no canary or A/B experiment has run in 'production'" in err and "mlci canary start" in err


def test_start_refuses_without_a_stable_version_in_the_environment(project, run_cli, registry_db):
    shutil.copy(registry_db, project / "mlflow.db")
    write(project, "canary:\n  percent: 20\n")
    code, _, err = run_cli("canary", "start", "--env", "production")
    assert code == 1, err
    assert "no version holds 'production' yet" in err


@pytest.mark.parametrize("canary", [False, True])
def test_the_deploy_template_lints_clean_with_and_without_the_canary_chain(tmp_path, canary):
    from mlci.lint import lint_file

    (tmp_path / ".git").mkdir()
    (tmp_path / "ci_templates").mkdir()
    template = Path(__file__).resolve().parents[2] / "ci_templates" / "mlci-deploy.yml"
    (tmp_path / "ci_templates" / "mlci-deploy.yml").write_text(template.read_text(encoding="utf-8"))
    (tmp_path / ".gitlab-ci.yml").write_text(
        "stages: [deploy]\ninclude:\n  - local: ci_templates/mlci-deploy.yml\n"
        f"    inputs:\n      canary: {str(canary).lower()}\n      canary-percent: 25\n", encoding="utf-8")
    result = lint_file(tmp_path / ".gitlab-ci.yml", check_config=False)
    assert [(f.rule, f.message) for f in result.findings if f.severity == "error"] == []
    from mlci.lint.resolve import load_pipeline

    jobs = load_pipeline(tmp_path / ".gitlab-ci.yml", root=tmp_path).jobs
    chain = [name for name in jobs if name.startswith("mlci-deploy-canary-")]
    assert chain == ["mlci-deploy-canary-start", "mlci-deploy-canary-analyze", "mlci-deploy-canary-promote",
                     "mlci-deploy-canary-abort"]
    start = jobs["mlci-deploy-canary-start"]
    assert "--percent 25" in start["script"][-1]
    entering = [rule for rule in start["rules"] if rule.get("when") != "never"]
    assert bool(entering) is canary, "the chain is off unless switched on"
    assert all(rule.get("when") == "manual" for rule in entering)
