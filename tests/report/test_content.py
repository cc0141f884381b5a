"""Report content: metric directions and deltas, section summaries, escaping of user data, HTML."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from mlci.report import sections
from mlci.report.build import ReportInputs, RunData, build_report, params_diff
from mlci.report.html import render_html
from mlci.report.markdown import delta_cell, render_markdown
from mlci.report.markup import md_code, md_text
from mlci.report.metrics import compare, direction_of, metric_rows
from tests.report import scenarios


@pytest.mark.parametrize(
    ("name", "configured", "expected"),
    [
        ("accuracy", {}, "higher"),
        ("val_loss", {}, "lower"),
        ("logloss", {}, "lower"),
        ("rmse", {}, "lower"),
        ("test/mae", {}, "lower"),
        ("latency_p95_ms", {}, "lower"),
        ("error_rate", {}, "lower"),
        ("unknown_score", {}, "higher"),
        ("terror_index", {}, "higher"),  # a word containing "error" is not the word error
        ("accuracy", {"accuracy": "lower"}, "lower"),
        ("accuracy_slice_eu", {"accuracy_slice_*": "lower"}, "lower"),
        ("val_loss", {"*": "higher"}, "higher"),
        # an exact key beats an earlier glob
        ("cost", {"c*": "higher", "cost": "lower"}, "lower"),
    ],
)
def test_direction_from_config_globs_then_name(name, configured, expected):
    assert direction_of(name, configured) == expected


def test_compare_handles_equal_zero_nan_and_missing():
    assert compare(0.9, 0.8, "higher").verdict == "better"
    assert compare(0.9, 0.8, "lower").verdict == "worse"
    same = compare(0.1 + 0.2, 0.3, "higher")
    assert same.verdict == "same" and same.absolute == 0.0
    zero = compare(0.5, 0.0, "higher")
    assert zero.verdict == "better" and zero.relative is None and zero.absolute == 0.5
    assert compare(float("nan"), 0.3, "higher").verdict == "n/a"
    assert compare(None, 0.3, "higher").verdict == "n/a"
    assert compare(0.3, None, "higher") is None
    inf = compare(math.inf, 1.0, "lower")
    assert inf.verdict == "worse" and inf.absolute is None


def test_delta_cell_shows_arrow_sign_relative_colour_and_word():
    assert delta_cell(compare(0.9, 0.8, "lower")) == "▲ +0.1 (+12.50%) 🔴 worse"
    assert delta_cell(compare(0.5, 0.0, "higher")) == "▲ +0.5 🟢 better"
    assert delta_cell(compare(1.0, 1.0, "higher")) == "= ⚪ same"
    assert delta_cell(compare(float("nan"), 1.0, "higher")) == "—"
    assert delta_cell(None) == "—"


def test_metric_rows_filter_and_keep_baseline_only_metrics():
    rows = metric_rows(
        {"acc": 0.9, "system/gpu": 50.0, "loss": "0.3"}, {"acc": 0.8, "auc": 0.7}, None,
        exclude=("system/*",),
    )
    assert [r.name for r in rows] == ["acc", "auc", "loss"]
    by_name = {r.name: r for r in rows}
    assert by_name["auc"].candidate is None and by_name["auc"].vs_champion.verdict == "n/a"
    assert by_name["loss"].candidate == 0.3 and by_name["loss"].vs_champion is None
    assert all(r.vs_target is None for r in rows)


def test_params_diff_lists_changed_added_and_removed_only():
    changes = params_diff({"a": "1", "b": "2", "new": "x"}, {"a": "1", "b": "3", "gone": "y"}, None)
    assert [(c.name, c.candidate, c.champion) for c in changes] == [
        ("b", "2", "3"), ("gone", None, "y"), ("new", "x", None),
    ]
    assert params_diff({"a": "1"}, None, None) == []


def test_gate_section_reads_rules_and_treats_failed_warn_rules_as_warnings():
    section = sections.gate_section(scenarios.GATE_FAILED)
    assert section.status == "failed"
    assert [row[:2] for row in section.table.rows] == [
        ("accuracy >= 0.95", "failed"),
        ("val_loss not worse than champion by 5%", "passed"),
        ("latency_p95_ms <= 10", "warning"),
    ]


def test_gate_section_without_overall_status_derives_it_from_the_rules():
    doc = {"results": [{"rule": "acc", "verdict": "pass"}, {"rule": "auc", "verdict": "FAIL"}]}
    assert sections.gate_section(doc).status == "failed"
    assert sections.gate_section({"passed": True, "rules": []}).status == "passed"


@pytest.mark.parametrize("garbage", [None, [], "text", 3, {"rules": "nope"}, {"rules": [1, None, "x"]}])
def test_sections_survive_unexpected_shapes(garbage):
    for build in (sections.gate_section, sections.data_check_section, sections.drift_section,
                  sections.telemetry_section):
        result = build(garbage)
        assert result is None or result.table is None or isinstance(result.table.rows, tuple)


def test_data_check_section_lists_only_rules_needing_attention():
    section = sections.data_check_section(scenarios.DATA_CHECK)
    assert section.status == "warning"
    assert section.headline == "3 rules: 1 warning, 2 passed"
    examples = "row 17: -1; row 404: 130; row 1999: 200"
    assert section.table.rows == (("data/train.parquet", "age between 0 and 120", "warning", "3 (0.15%)", examples),)


def test_drift_section_puts_drifting_columns_first():
    columns = {"b": {"psi": 0.01, "drift": False}, "a": {"psi": 0.4, "drift": True}}
    section = sections.drift_section({"columns": columns})
    assert section.status == "warning"
    assert section.headline == "1 of 2 columns drifted"
    assert [row[0] for row in section.table.rows] == ["a", "b"]
    assert sections.drift_section({"drift": False}).headline == "no drift detected"


def test_missing_inputs_leave_their_parts_out():
    model = build_report(ReportInputs(model_name="churn"))
    text = render_markdown(model)
    assert "### Metrics" not in text and "### Params" not in text and "Gate" not in text
    assert "No candidate run was found" in text
    assert text.startswith("## Model report: `churn`\n")


def test_long_tables_are_folded_in_details():
    metrics = {f"accuracy_slice_{i:02d}": 0.8 + i / 100 for i in range(20)}
    candidate = replace(scenarios.CANDIDATE, metrics=metrics)
    champion = replace(scenarios.CHAMPION, metrics={k: v - 0.01 for k, v in metrics.items()})
    model = build_report(
        ReportInputs(model_name="churn", candidate=candidate, champion=champion), scenarios.OPTIONS
    )
    text = render_markdown(model, fold_after=12)
    assert "<details>\n<summary>20 metrics: 20 better</summary>\n\n| Metric |" in text
    short = render_markdown(model, fold_after=50)
    assert "<details>" not in short


def test_huge_tables_are_capped_so_the_note_stays_within_gitlabs_limit():
    metrics = {f"accuracy_slice_{i:04d}": 0.5 for i in range(5000)}
    model = build_report(ReportInputs(model_name="churn", candidate=replace(scenarios.CANDIDATE, metrics=metrics)))
    text = render_markdown(model)
    assert text.count("| `accuracy_slice_") == 200
    assert "_… 4800 more rows in report.html (job artifacts)._" in text
    assert len(text) < 100_000
    assert render_html(model).count("<code>accuracy_slice_") == 5000


ADVERSARIAL = "x | y\n<script>alert(1)</script> [link](http://evil.example) @all <!-- mlci-report:churn -->"


def test_user_text_cannot_break_tables_inject_html_links_mentions_or_markers():
    candidate = RunData(
        run_id="r" * 32, name=ADVERSARIAL, experiment_id="1",
        metrics={"acc": 0.9}, params={"p|q": ADVERSARIAL, "backticks": "a`b``c"},
    )
    champion = RunData(run_id="s" * 32, experiment_id="1", metrics={"acc": 0.8}, params={"p|q": "1"})
    gate = {"status": "failed", "rules": [{"name": ADVERSARIAL, "status": "failed", "message": ADVERSARIAL}]}
    model = build_report(
        ReportInputs(model_name="churn", candidate=candidate, champion=champion, champion_version="2", gate=gate),
        scenarios.OPTIONS,
    )
    text = render_markdown(model)
    assert "<!--" not in text  # nothing can pass for the note's hidden key marker
    # Outside code spans (where GitLab renders everything literally) no markup survives.
    prose = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", text)
    assert "<script>" not in prose and "&lt;script&gt;" in prose
    assert not re.search(r"(?<!\\)\]\(http://evil", prose)  # brackets are escaped: no link
    assert "@all" not in prose  # a zero-width space breaks the mention
    params_table = text.split("### Params changed")[1].split("###")[0]
    rows = [line for line in params_table.splitlines() if line.startswith("| `")]
    assert len(rows) == 2
    # 3 columns -> 4 unescaped pipes; an unescaped `|` in a value would add a cell
    assert all(len(re.split(r"(?<!\\)\|", row)) == 5 for row in rows)
    gate_rows = [line for line in text.split("### ❌ Gate")[1].splitlines() if line.startswith("| x")]
    assert len(gate_rows) == 1 and len(re.split(r"(?<!\\)\|", gate_rows[0])) == 8
    assert "| ```a`b``c``` |" in text  # the fence is longer than any backtick run inside

    page = render_html(model)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="http://evil.example"' not in page


def test_md_helpers():
    assert md_text("a_b *c* [d](e) #1 @bob") == "a\\_b \\*c\\* \\[d\\](e) \\#1 @\u200bbob"
    assert md_code("") == "—"
    assert md_code("a|b") == "`a\\|b`"
    assert md_code("a|b", in_table=False) == "`a|b`"
    assert md_code("`x`") == "`` `x` ``"
    assert md_text("x" * 500).endswith("…") and len(md_text("x" * 500)) == 120


def test_html_report_is_a_standalone_page_with_relative_images():
    model = build_report(scenarios.with_champion(), scenarios.OPTIONS)
    from mlci.report.model import Image

    model.images.append(Image("history-accuracy.png", "accuracy history", "history"))
    page = render_html(model, {"history-accuracy.png": "report-plots/history-accuracy.png"})
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert '<img src="report-plots/history-accuracy.png" alt="accuracy history">' in page
    assert '<td class="better">▲ +0.0207 (+2.27%) better</td>' in page
    assert '<td class="worse">▲ +2.5 (+25.00%) worse</td>' in page
    assert "http://" not in page.split("<body>")[1].split("https://")[0]  # no external assets before content


def test_gate_json_written_by_mlci_gate_reads_back_rule_by_rule():
    """Contract with the gate: its real json_payload, not a hand-written imitation."""
    from mlci.config import Config
    from mlci.gate.core import ModelEvidence, evaluate
    from mlci.gate.policy import policy_from_config
    from mlci.gate.render import GateReport, json_payload

    config = Config(data={"model": {"metrics-direction": {}}, "gate": {"on-no-champion": "absolute-only", "rules": [
        {"metric": "accuracy", "min": 0.95},
        {"metric": "accuracy_slice_*", "min": 0.8},
        {"metric": "val_loss", "direction": "lower", "max-regression-pct": 5},
        {"metric": "f1", "min": 0.99, "severity": "warn"},
    ]}})
    candidate = ModelEvidence({"accuracy": 0.93, "accuracy_slice_eu": 0.9, "accuracy_slice_us": 0.7,
                               "val_loss": 0.2, "f1": 0.9}, run_id="r1")
    champion = ModelEvidence({"val_loss": 0.25}, run_id="r0", version="3")
    result = evaluate(policy_from_config(config), candidate, champion)
    doc = json_payload(GateReport(result=result, model="churn", candidate=candidate, champion=champion))

    section = sections.gate_section(doc)

    assert section.status == "failed"
    statuses = {row[0]: row[1] for row in section.table.rows}
    assert len(statuses) == 4  # a glob rule's per-metric checks are not counted as extra rules
    assert sorted(statuses.values()) == ["failed", "failed", "passed", "warning"]
    accuracy = next(row for row in section.table.rows if row[0].startswith("accuracy") and "*" not in row[0])
    assert accuracy[1:5] == ("failed", "error", "0.93", "0.95")


def test_data_check_json_written_by_mlci_data_check_reads_back():
    """Contract with the data check: its real to_json payload."""
    from mlci.data.check import Example, FileResult, RuleResult
    from mlci.data.report import CheckSummary, to_json

    rules = [
        RuleResult("age not null", "not-null", "error", "passed", column="age"),
        RuleResult("age in range", "range", "error", "failed", column="age", failing_rows=2, failing_fraction=0.02,
                   examples=[Example(3, "-1"), Example(7, "999")]),
        RuleResult("plan allowed", "allowed", "warn", "failed", column="plan", failing_rows=1, failing_fraction=0.01),
        RuleResult("fresh", "freshness", "error", "skipped", message="no timestamp column"),
    ]
    doc = to_json(CheckSummary([FileResult("data/train.csv", "train", "csv", 100, 0.01, rules)]))

    section = sections.data_check_section(doc)

    assert section.status == "failed"
    assert section.headline == "4 rules: 1 failed, 1 warning, 1 passed, 1 skipped"
    assert section.table.rows == (
        ("data/train.csv", "age in range", "failed", "2 (2.00%)", "row 3: -1; row 7: 999"),
        ("data/train.csv", "plan allowed", "warning", "1 (1.00%)", ""),
    )


def test_drift_json_written_by_mlci_data_drift_reads_back():
    """Contract with the drift check: its real to_json payload, histograms included."""
    from mlci.data.drift import ColumnDrift, DatasetDrift, Histogram
    from mlci.data.drift_report import DriftSummary, to_json
    from mlci.report import plots

    columns = [
        ColumnDrift("age", "numeric", "drift", reasons=["PSI 0.40 > 0.2"], psi=0.4, ks_statistic=0.3, ks_pvalue=0.001,
                    histogram=Histogram(["<30", "30-50", ">50"], [0.3, 0.4, 0.3], [0.1, 0.3, 0.6])),
        ColumnDrift("plan", "categorical", "ok", psi=0.01),
        ColumnDrift("id", "skipped", "skipped", note="identifier column"),
    ]
    doc = to_json(DriftSummary("ref.parquet", [DatasetDrift("cur.parquet", "ref.parquet", 100, 100, columns)]))

    section = sections.drift_section(doc)

    assert section.status == "warning" and section.headline == "1 of 3 columns drifted"
    assert [row[0] for row in section.table.rows] == ["age", "id", "plan"]
    assert section.table.rows[0][2:] == ("psi=0.4, ks_statistic=0.3, ks_pvalue=0.001", "drift", "PSI 0.40 > 0.2")
    assert section.table.rows[1][3:] == ("skipped", "")
    specs = plots.drift_histograms(doc)
    assert [s.name for s in specs] == ["drift-age.png"] and specs[0].data.categories == ("<30", "30-50", ">50")

    unavailable = to_json(DriftSummary("champion", [], reference_unavailable="no champion yet"))
    assert sections.drift_section(unavailable).headline == "not measured: no champion yet"


def test_train_json_written_by_mlci_train_reads_back_without_secrets():
    """Contract with the train wrapper: its real train_summary payload."""
    from mlci.train.fingerprint import DataFile
    from mlci.train.results import train_summary

    doc = train_summary(
        run_id="r1", experiment_id="1", experiment="ml/churn", tracking_uri="https://bob:s3cret@mlflow.example.com",
        status="FINISHED", exit_code=0, duration_seconds=95.2, fingerprint="f" * 64, cache_hit=True,
        artifact_path="model", command="python train.py --token abc", params={"depth": 3},
        data=[DataFile("data/train.parquet", "9f" * 32, 1024, 10)],
        telemetry={"samples": 3, "cpu": {"peak_percent": 90.0}, "gpu": {"available": True, "count": 2,
                   "names": ["NVIDIA A100", "NVIDIA A100"], "peak_utilization_percent": 97.0}},
        reused_from={"run_id": "r0"},
    )

    section = sections.telemetry_section(doc)

    assert section.headline == "95 s, cache hit: an identical earlier run was re-used, 2x NVIDIA A100"
    rows = dict(section.table.rows)
    assert rows["cpu.peak_percent"] == "90" and rows["gpu.peak_utilization_percent"] == "97"
    assert rows["reused_from.run_id"] == "r0"
    text = " ".join(" ".join(row) for row in section.table.rows)
    assert "s3cret" not in text and "--token" not in text and "9f9f" not in text


def test_train_json_written_by_train_select_reads_back_like_mlci_trains(tmp_path):
    """Contract with `mlci train-select`: train.json rebuilt from the chosen sweep run's tags."""
    import json

    from mlci.outputs import write_json
    from mlci.report.collect import read_artifacts
    from mlci.train.fingerprint import DataFile
    from mlci.train.lineage import run_tags
    from mlci.train.results import run_train_summary

    telemetry = {"samples": 3, "cpu": {"peak_percent": 80.0},
                 "gpu": {"available": True, "count": 1, "names": ["NVIDIA L4"], "peak_utilization_percent": 71.0}}
    tags = run_tags(ci_tags={"mlci.gitlab.pipeline_id": "777"}, fingerprint="f" * 64,
                    command="python train.py --token abc", image="", code_mode="git",
                    data=[DataFile("data/train.parquet", "9f" * 32, 1024, 10)])
    tags |= {"mlci.exit_code": "0", "mlci.duration_seconds": "42.250",
             "mlci.telemetry": json.dumps(telemetry, separators=(",", ":"))}
    write_json(tmp_path / "train.json", run_train_summary(
        run_id="r3", experiment_id="1", experiment="ml/churn", tracking_uri="https://mlflow.example.com",
        status="FINISHED", start_time_ms=1_000, end_time_ms=50_000, tags=tags, params={"c": "0.3"},
        artifact_path="model", cache_hit=False,
    ))

    found, warnings = read_artifacts(tmp_path)
    section = sections.telemetry_section(found["train"])

    assert not warnings and found["train"]["version"] == 1 and found["train"]["run_id"] == "r3"
    assert section.status == "info"
    assert section.headline == "42 s, NVIDIA L4"
    rows = dict(section.table.rows)
    assert rows["status"] == "FINISHED" and rows["cpu.peak_percent"] == "80"
    assert rows["gpu.peak_utilization_percent"] == "71"
    text = " ".join(" ".join(row) for row in section.table.rows)
    assert "--token" not in text and "9f9f" not in text
