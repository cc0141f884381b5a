"""The MR report markdown, compared with golden files (`pytest --update-golden` rewrites them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlci.report.build import build_report
from mlci.report.markdown import render_markdown
from mlci.report.model import Image
from tests.report import scenarios

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "report"

CASES = {
    "with_champion": scenarios.with_champion,
    "without_champion": scenarios.without_champion,
    "gate_failed": scenarios.gate_failed,
}


def render_case(name: str) -> str:
    model = build_report(CASES[name](), scenarios.OPTIONS)
    if name == "with_champion":
        model.images += [
            Image("history-accuracy.png", "accuracy over the last 5 target-branch runs", "history"),
            Image("confusion-matrix.png", "Confusion matrix (candidate)", "predictions"),
        ]
    links = {img.name: f"https://gitlab.example.com/gitlab/-/project/42/uploads/abc/{img.name}" for img in model.images}
    return render_markdown(model, links, fold_after=12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_markdown_matches_golden(case, update_golden):
    expected_file = GOLDEN / f"{case}.md"
    actual = render_case(case)
    if update_golden:
        expected_file.write_text(actual, encoding="utf-8")
        pytest.skip("golden file rewritten")
    assert expected_file.exists(), f"missing {expected_file}; run pytest --update-golden"
    assert actual == expected_file.read_text(encoding="utf-8")


def test_report_with_champion_compares_against_both_baselines():
    text = render_case("with_champion")
    assert "| Champion v3 | Δ vs champion | `main` latest | Δ vs `main` |" in text
    # accuracy up is good, val_loss down is good, latency up is bad.
    assert "| `accuracy` ↑ | 0.9312 | 0.9105 | ▲ +0.0207 (+2.27%) 🟢 better |" in text
    assert "| `val_loss` ↓ | 0.2104 | 0.2511 | ▼ -0.0407 (-16.21%) 🟢 better |" in text
    assert "| `latency_p95_ms` ↓ | 12.5 | 10 | ▲ +2.5 (+25.00%) 🔴 worse | 12.5 | = ⚪ same |" in text
    # A metric only the champion logged is shown, with the candidate's value missing.
    assert "| `roc_auc` ↑ | — | 0.95 | — | — | — |" in text
    # train.json's tracking URI (it may carry credentials) and identifiers stay out of the note.
    assert "secret" not in text and "fingerprint" not in text
    # system/* telemetry metrics are excluded by default.
    assert "system/cpu" not in text
    # Only changed params, against both baselines.
    assert "`max_depth` | `8` | `6` | `6`" in text
    assert "`seed`" not in text
    assert "(https://gitlab.example.com/gitlab/-/project/42/uploads/abc/history-accuracy.png)" in text


def test_report_without_champion_says_so_and_has_no_champion_columns():
    text = render_case("without_champion")
    assert "Champion" not in text.split("### Metrics")[1].split("###")[0]
    assert "No champion in the registry yet" in text
    assert "cold-start policy absolute-only" in text
    assert "⏭️ skipped" in text


def test_failed_gate_is_the_first_thing_a_reviewer_sees():
    text = render_case("gate_failed")
    first_lines = text.splitlines()[:3]
    assert "**Gate: ❌ failed** (accuracy &gt;= 0.95)" in first_lines[2]
    assert "### ❌ Gate: failed — 3 rules: 1 failed, 1 warning, 1 passed" in text
    # A failing rule of severity warn is a warning, not a block.
    assert "| latency\\_p95\\_ms &lt;= 10 | ⚠️ warning | warn |" in text
    assert "No finished run on the target branch main" in text
