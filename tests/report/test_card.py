"""`mlci report model-card` against a real sqlite MLflow store with a registered, deployed version."""

from __future__ import annotations

import json
import re

import pytest

from mlci.report.card import DESCRIPTION_LIMIT, CardInputs, datasets_from_run, fit_description, render_card
from tests.report import scenarios
from tests.report.conftest import CARD_MODEL


@pytest.fixture
def card_project(tmp_path, report_store, clean_env):
    config = tmp_path / "mlci.yml"
    config.write_text(
        f"model:\n  name: {CARD_MODEL}\n"
        f"project:\n  owner: ml-platform team\n"
        f"  intended-use: |\n    Ranks customers by churn risk for the retention team.\n\n"
        f"    Not for credit or pricing decisions.\n"
        f"mlflow:\n  tracking-uri: '{report_store.uri}'\n  registry-mode: alias\n"
    )
    clean_env.chdir(tmp_path)
    return config


def card_cli(run_cli, config, out, *args):
    return run_cli("--config", str(config), "--out-dir", str(out), "report", "model-card", *args)


def test_model_card_has_every_section_and_becomes_the_version_description(
    run_cli, card_project, tmp_path, report_store
):
    out = tmp_path / "out"
    code, stdout, stderr = card_cli(run_cli, card_project, out, "--version", report_store.card_version)
    assert code == 0, stderr
    card = (out / "model-card.md").read_text()
    assert card.startswith(f"# Model card: `{CARD_MODEL}` version {report_store.card_version}\n")
    # Summary: markers held, source run, lineage, owner.
    assert "| **Markers** | `production`, `staging` |" in card
    assert f"| **Source run** | `{report_store.card_run}` |" in card
    assert "| **Commit** | `abababababab` |" in card
    assert "| **Pipeline** | [\\#881](https://gitlab.example.com/ml/churn/-/pipelines/881) |" in card
    assert "| **Owner** | ml-platform team |" in card
    # Intended use keeps its paragraphs.
    assert "Ranks customers by churn risk for the retention team.\n\nNot for credit or pricing decisions." in card
    # Training data lineage from mlci.data.* tags and the MLflow dataset input.
    assert "| `train` | — | 5000 | 1.0 MiB | `" + "9f" * 32 + "` | `data/train.parquet` |" in card
    assert "| `reference` | evaluation | 1200 | — | `d1e2f3` | `data/reference.parquet` |" in card
    # Metrics without system telemetry, with their direction.
    assert "| `accuracy` | 0.93 | higher |" in card and "| `val_loss` | 0.2 | lower |" in card
    assert "system/" not in card
    # Gate results from the version tags.
    assert "✅ **Validated**" in card
    assert "| `mlci.gate.status` | `passed` |" in card
    # The approver trail: who moved which marker, oldest first, with user text escaped.
    audit = card.split("## Owner and approvals")[1]
    assert "Moved or approved by: alice, bob" in audit
    staging, production = (audit.index("| staging |"), audit.index("| production |"))
    assert staging < production
    assert "| gate passed |" in audit and "| approved in !17 &lt;b&gt;@\u200ball&lt;/b&gt; |" in audit
    assert re.search(r"\| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \| bob \| move-marker \| production \| — → 1 \|", audit)
    assert "[\\#900](https://gitlab.example.com/p/900)" in audit

    from mlflow import MlflowClient

    stored = MlflowClient(report_store.uri, report_store.uri).get_model_version(CARD_MODEL, report_store.card_version)
    assert stored.description == card
    assert f"wrote {out / 'model-card.md'}" in stdout


def test_marker_name_output_file_and_no_description(run_cli, card_project, tmp_path, report_store):
    target = tmp_path / "cards" / "prod.md"
    from mlflow import MlflowClient

    client = MlflowClient(report_store.uri, report_store.uri)
    client.update_model_version(CARD_MODEL, report_store.card_version, description="kept")
    code, _, stderr = card_cli(run_cli, card_project, tmp_path / "out", "--version", "production",
                               "--output", str(target), "--no-description")
    assert code == 0, stderr
    assert target.read_text().startswith(f"# Model card: `{CARD_MODEL}` version {report_store.card_version}")
    assert client.get_model_version(CARD_MODEL, report_store.card_version).description == "kept"


def test_version_comes_from_the_gate_dotenv_variable(run_cli, card_project, tmp_path, report_store, clean_env):
    clean_env.setenv("MLCI_MODEL_VERSION", report_store.card_version)
    code, _, stderr = card_cli(run_cli, card_project, tmp_path / "out", "--no-description")
    assert code == 0, stderr


def test_gate_json_is_used_only_when_it_is_about_this_version(run_cli, card_project, tmp_path, report_store):
    out = tmp_path / "out"
    out.mkdir()
    gate = scenarios.gate("passed", [scenarios.verdict("accuracy >= 0.9", "passed", observed=0.93, threshold=0.9)],
                          registered=report_store.card_version)
    (out / "gate.json").write_text(json.dumps(gate))
    assert card_cli(run_cli, card_project, out, "--version", report_store.card_version, "--no-description")[0] == 0
    assert "| accuracy &gt;= 0.9 | ✅ passed |" in (out / "model-card.md").read_text()
    (out / "gate.json").write_text(json.dumps({**gate, "registered_version": "999"}))
    assert card_cli(run_cli, card_project, out, "--version", report_store.card_version, "--no-description")[0] == 0
    assert "accuracy &gt;= 0.9" not in (out / "model-card.md").read_text()


def test_locally_the_version_comes_from_the_gate_json_of_the_last_mlci_gate(run_cli, card_project, tmp_path,
                                                                           report_store):
    # `mlci gate` then `mlci report model-card` on a laptop: no dotenv between them, but gate.json is there.
    out = tmp_path / "out"
    out.mkdir()
    gate = scenarios.gate("passed", [], registered=report_store.card_version)
    (out / "gate.json").write_text(json.dumps(gate))
    code, stdout, stderr = card_cli(run_cli, card_project, out, "--no-description")
    assert code == 0, stderr
    assert f"version {report_store.card_version}" in stdout


def test_missing_version_is_a_usage_error(run_cli, card_project, tmp_path):
    code, _, stderr = card_cli(run_cli, card_project, tmp_path / "out")
    assert code == 2
    assert "needs --version" in stderr


def test_unknown_version_or_marker_fails_clearly(run_cli, card_project, tmp_path):
    code, _, stderr = card_cli(run_cli, card_project, tmp_path / "out", "--version", "42")
    assert code == 3
    assert re.search(r"MLflow sqlite:///\S+mlflow\.db \(HTTP 404\)", stderr)
    code, _, stderr = card_cli(run_cli, card_project, tmp_path / "out", "--version", "canary")
    assert code == 2
    assert "no version of model 'churn-card' holds the marker 'canary'" in stderr
    assert not (tmp_path / "out" / "model-card.md").exists()


def test_card_without_lineage_gate_or_audit_says_what_is_missing():
    card = render_card(CardInputs(model_name="m", version="1"))
    assert "_Not stated. Set `project.intended-use` in mlci.yml._" in card
    assert "_No data lineage was recorded for the source run._" in card
    assert "⚠️ **No gate result** is recorded on this version." in card
    assert "_No marker moves or deployments are recorded for this version yet._" in card
    assert "❌ **Not validated**" in render_card(CardInputs("m", "1", version_tags={"mlci.validated": "false"}))


def test_dataset_lineage_prefers_the_train_wrappers_json_list():
    tags = {
        "mlci.data": json.dumps([{"path": "data/a b.csv", "sha256": "ab", "size_bytes": 2048, "rows": None}]),
        "mlci.data.files": "1",
        "mlci.data.data/a_b.csv.sha256": "ab",
        "mlci.data.data/a_b.csv.size_bytes": "2048",
    }
    refs = datasets_from_run(tags, [])
    assert [(r.name, r.digest, r.size, r.rows) for r in refs] == [("data/a b.csv", "ab", "2048", "")]
    truncated = datasets_from_run({"mlci.data": '[{"path": "x", "sha', "mlci.data.x.sha256": "cd"}, [])
    assert [(r.name, r.digest) for r in truncated] == [("x", "cd")]


def test_dataset_lineage_is_read_defensively():
    refs = datasets_from_run(
        {"mlci.data.a.sha256": "x", "mlci.data.a.bytes": "12", "mlci.data.b.c.rows": "3", "mlci.other": "y"},
        [{"name": "a", "digest": "ignored-when-tag-has-it", "profile": "not json"},
         {"name": "d", "source": "{\"path\": \"/d.csv\"}", "profile": {"num_rows": 9}}],
    )
    assert [(r.name, r.digest, r.size, r.rows, r.source) for r in refs] == [
        ("a", "x", "12", "", ""), ("b.c", "", "", "3", ""), ("d", "", "", "9", "/d.csv"),
    ]


def test_long_cards_are_cut_at_a_section_to_fit_the_registry():
    card = "# Card\n\n## A\n\n" + "a" * 3000 + "\n\n## B\n\n" + "b" * 3000 + "\n"
    fitted = fit_description(card, where=" of job https://x/jobs/1")
    assert len(fitted) <= DESCRIPTION_LIMIT
    assert "## A" in fitted and "## B" not in fitted
    assert fitted.rstrip().endswith("the full card is model-card.md of job https://x/jobs/1._")
    assert fit_description("short") == "short"
