"""Policy parsing from mlci.yml, and the rendered artifacts, without MLflow."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from mlci.config import load_effective
from mlci.errors import ConfigError
from mlci.gate.core import ModelEvidence, evaluate
from mlci.gate.measure import directory_size_mb, percentile, time_calls
from mlci.gate.policy import policy_from_config
from mlci.gate.render import GateReport, dotenv_values, junit_suites, markdown, metric_samples
from mlci.outputs.junit import render_junit
from mlci.outputs.openmetrics import render_openmetrics


def load_policy(tmp_path, text: str, env: dict | None = None, overrides: list | None = None):
    path = tmp_path / "mlci.yml"
    path.write_text(text, encoding="utf-8")
    return policy_from_config(load_effective(path, env=env or {}, overrides=overrides or []))


def test_defaults_are_explicit(tmp_path):
    policy = load_policy(tmp_path, "model:\n  name: m\n")
    assert (policy.on_no_champion, policy.warn_only, policy.champion_marker, policy.rules) == (
        "absolute-only", False, "champion", ())
    assert (policy.latency.repeats, policy.latency.warmup, policy.latency.batch_rows) == (30, 3, 100)


def test_direction_comes_from_model_metrics_direction_globs(tmp_path):
    policy = load_policy(tmp_path, """
model:
  metrics-direction: {"loss*": lower, rmse: lower}
gate:
  rules:
    - {metric: loss_val, max-regression: 0.1}
    - {metric: rmse, max-regression-pct: 5}
    - {metric: rmse, direction: higher, min-improvement: 1}
    - {budget: latency-p95-ms, max-regression-pct: 10}
""")
    assert [r.direction for r in policy.rules] == ["lower", "lower", "higher", "lower"]
    assert [r.kind for r in policy.rules] == ["relative", "relative", "relative", "budget-relative"]
    assert policy.budgets_needed == policy.champion_budgets_needed == {"latency-p95-ms"}


def test_every_bad_rule_is_reported_at_once_with_its_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path, """gate:
  rules:
    - {metric: a}
    - {metric: b, budget: model-size-mb, max: 1}
    - {budget: model-size-mb, min: 1}
    - {metric: c, min: 2, max: 1}
    - {metric: d, min: 1, direction: higher}
    - {metric: e, direction: higher, max-regression: 1, min-improvement: 1}
""")
    messages = [e.message.replace(str(tmp_path) + "/", "") for e in info.value.errors]
    assert messages == [
        "mlci.yml:3:7: rule for 'a' has no threshold",
        "mlci.yml:4:7: a gate rule needs exactly one of 'metric' or 'budget'",
        "mlci.yml:5:36: budget model-size-mb takes max, not min (lower is better)",
        "mlci.yml:6:24: min 2 is greater than max 1; no value can pass",
        "mlci.yml:7:38: direction only applies to champion comparisons (max-regression, min-improvement, ...)",
        "mlci.yml:8:7: rule for 'e' has several champion tolerances (max-regression, min-improvement); use one",
    ]


def test_duplicate_rule_names_stay_distinct_tests(tmp_path):
    policy = load_policy(tmp_path, "gate:\n  rules:\n    - {metric: a, min: 1}\n    - {metric: a, min: 1}\n")
    assert [r.name for r in policy.rules] == ["a >= 1", "a >= 1 #2"]


def test_environment_and_set_override_the_file(tmp_path):
    text = "gate:\n  on-no-champion: pass\n"
    assert load_policy(tmp_path, text, env={"MLCI_GATE_ON_NO_CHAMPION": "fail"}).on_no_champion == "fail"
    assert load_policy(tmp_path, text, overrides=["gate.on-no-champion=absolute-only"]).on_no_champion == (
        "absolute-only")
    assert load_policy(tmp_path, text, env={"MLCI_GATE_WARN_ONLY": "true"}).warn_only is True
    with pytest.raises(ConfigError, match="not one of"):
        load_policy(tmp_path, "gate:\n  on-no-champion: maybe\n")


def _report(metrics: dict, champion: dict | None, rules_yaml: str, tmp_path, **kw) -> GateReport:
    policy = load_policy(tmp_path, rules_yaml)
    candidate = ModelEvidence(metrics=metrics, budgets=kw.pop("budgets", {}), run_id="run1")
    champ = ModelEvidence(metrics=champion, version="3", run_id="run0") if champion is not None else None
    return GateReport(result=evaluate(policy, candidate, champ), model="m", candidate=candidate, champion=champ, **kw)


def test_openmetrics_survives_hostile_metric_names(tmp_path):
    metrics = {"val/acc": 0.9, "acc.1": 0.1, "acc_1": 0.2, "1st": 3.0, "loss": math.nan, "score_total": 1.0}
    report = _report(metrics, {"val/acc": 0.8}, "gate:\n  rules: [{metric: 'val/acc', min: 0.5}]\n", tmp_path,
                     budgets={"latency-p95-ms": 4.5})
    text = render_openmetrics(metric_samples(report))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"val_acc", "acc_1", "acc_1_2", "_1st", "loss", "mlci_latency_p95_ms"} <= set(families)
    assert {s.labels["model"] for s in families["val_acc"].samples} == {"candidate", "champion"}
    assert math.isnan(families["loss"].samples[0].value)
    assert text.endswith("# EOF\n")


def test_junit_uses_error_for_missing_and_marks_warnings(tmp_path):
    report = _report({"a": 0.5}, None, """gate:
  on-no-champion: absolute-only
  rules:
    - {metric: a, min: 0.9, severity: warn}
    - {metric: missing_metric, min: 0.1}
    - {metric: a, direction: higher, max-regression: 0}
""", tmp_path)
    root = ET.fromstring(render_junit(junit_suites(report)).split("\n", 1)[1])
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == ["champion", "a >= 0.9", "missing_metric >= 0.1", "a vs champion (max-regression 0)"]
    assert cases["a >= 0.9"].find("failure").get("message").startswith("non-blocking:")
    assert "not logged" in cases["missing_metric >= 0.1"].find("error").get("message")
    assert cases["a vs champion (max-regression 0)"].find("skipped") is not None
    assert root.get("tests") == "4" and root.get("errors") == "1" and root.get("failures") == "1"


def test_markdown_escapes_table_breakers_and_has_a_row_per_verdict(tmp_path):
    report = _report({"a|b": 0.9}, {"a|b": 0.95}, """gate:
  rules:
    - {name: "pipe | in name", metric: "a|b", min: 0.5}
    - {metric: "a|b", direction: higher, max-regression: 0.01}
""", tmp_path)
    text = markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "Rule" not in line]
    assert len(rows) == 2
    assert rows[0].startswith("| pipe \\| in name | ✅ passed | 0.9 |  | >= 0.5 |")
    assert "❌ failed" in rows[1] and "| 0.95 | >= 0.94 |" in rows[1]
    assert "### ❌ Model gate failed: `m`" in text


def test_dotenv_has_no_version_unless_registered(tmp_path):
    report = _report({"a": 1.0}, {}, "gate:\n  rules: [{metric: a, min: 0.5}]\n", tmp_path)
    assert dotenv_values(report) == {"MLCI_GATE": "passed", "MLCI_MODEL_NAME": "m", "MLCI_MODEL_VERSION": "",
                                     "MLCI_RUN_ID": "run1"}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([5.0], 95, 5.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.5), ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
     (list(map(float, range(1, 101))), 95, 95.05), ([], 50, math.nan)],
)
def test_percentile(values, q, expected):
    result = percentile(values, q)
    assert (math.isnan(result) and math.isnan(expected)) or result == pytest.approx(expected)


def test_time_calls_counts_only_the_timed_calls():
    calls = []
    timings = time_calls(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and len(timings) == 4 and all(t >= 0 for t in timings)


def test_directory_size(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"x" * (1 << 20))
    (tmp_path / "sub" / "b.bin").write_bytes(b"x" * (1 << 19))
    assert directory_size_mb(tmp_path) == pytest.approx(1.5)
