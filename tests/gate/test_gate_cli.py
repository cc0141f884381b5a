"""`mlci gate` end to end against a real sqlite MLflow store with real sklearn models."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

ACCURACY_MIN = {"metric": "accuracy", "min": 0.8}
NOT_WORSE = {"name": "accuracy not worse than champion", "metric": "accuracy", "max-regression": 0.01}
SLICES = {"metric": "accuracy_slice_*", "min": 0.7}
STANDARD = {"on-no-champion": "absolute-only", "rules": [ACCURACY_MIN, NOT_WORSE, SLICES]}


def junit_cases(project) -> dict[str, ET.Element]:
    root = ET.parse(project.out / "gate.junit.xml").getroot()
    return {case.get("name"): case for case in root.iter("testcase")}


def test_good_candidate_passes_and_is_registered_as_validated_candidate(project, clean_env):
    clean_env.setenv("GITLAB_USER_LOGIN", "carol")
    clean_env.setenv("CI_PIPELINE_ID", "5150")
    clean_env.setenv("CI_JOB_ID", "808")
    clean_env.setenv("CI_COMMIT_SHA", "deadbeef")
    project.write_config(STANDARD)
    champion = project.crown("worse")

    code, out, err = project.gate("good")

    assert code == 0, err
    assert "registry: alias mode" in out
    assert f"champion: version {champion}" in out
    assert "gate passed: 3 passed, 0 failed, 0 skipped" in out
    env = project.env()
    assert env == {"MLCI_GATE": "passed", "MLCI_MODEL_NAME": project.model, "MLCI_MODEL_VERSION": "2",
                   "MLCI_RUN_ID": project.store.runs["good"]}
    registry = project.registry()
    version = registry.get_version(project.model, "2")
    assert version.validated
    assert version.run_id == project.store.runs["good"]
    assert version.tags["mlci.gate.status"] == "passed"
    assert version.tags["mlci.gate.champion"] == champion
    assert version.tags["mlci.gitlab.commit"] == "commit-good"  # lineage of the training run
    assert version.aliases == ("candidate",)
    assert registry.get_marker(project.model, "champion").version == champion  # the gate never crowns
    audit = registry.audit_trail(project.model, "2")
    assert [(a["marker"], a["to-version"], a["who"], a["pipeline"], a["job"], a["commit"]) for a in audit] == [
        ("candidate", "2", "carol", "5150", "808", "deadbeef"),
    ]
    assert audit[0]["reason"].startswith("gate passed")


def test_worse_candidate_is_blocked_and_the_rule_is_named(project):
    project.write_config(STANDARD)
    project.crown("good")

    code, out, err = project.gate("worse")

    assert code == 1
    assert "accuracy not worse than champion" in err
    assert "accuracy >= 0.8" in err
    assert "FAIL  accuracy not worse than champion: accuracy = " in out
    assert project.env()["MLCI_GATE"] == "failed"
    assert project.env()["MLCI_MODEL_VERSION"] == ""
    assert [v.version for v in project.registry().latest_versions(project.model)] == ["1"]  # nothing registered
    cases = junit_cases(project)
    failure = cases["accuracy not worse than champion"].find("failure")
    assert failure is not None and "vs champion" in failure.get("message")
    assert project.json()["status"] == "failed"


@pytest.mark.parametrize(
    ("policy", "label", "exit_code", "registered"),
    [
        ("absolute-only", "good", 0, True),
        ("absolute-only", "worse", 1, False),  # absolute rules still apply
        ("pass", "worse", 0, True),  # the first model passes, failures reported
        ("fail", "good", 1, False),  # no champion, no pass
    ],
)
def test_cold_start_follows_the_policy_and_says_so(project, policy, label, exit_code, registered):
    project.write_config({**STANDARD, "on-no-champion": policy})

    code, out, err = project.gate(label)

    assert code == exit_code, out + err
    assert f"on-no-champion: {policy}" in out
    cases = junit_cases(project)
    assert "champion" in cases  # the cold start is a visible test of its own
    skipped = cases["accuracy not worse than champion"].find("skipped")
    assert skipped is not None and "no champion" in skipped.get("message")
    assert project.json()["cold_start"] is True
    assert project.json()["on_no_champion"] == policy
    assert bool(project.env()["MLCI_MODEL_VERSION"]) is registered
    assert (project.registry().get_marker(project.model, "candidate") is not None) is registered


def test_latency_budget_fails_a_deliberately_slow_model(project):
    gate = {"latency": {"repeats": 5, "warmup": 1},
            "rules": [{"budget": "latency-p95-ms", "max": 100}, {"budget": "model-size-mb", "max": 50}]}
    project.write_config(gate)

    slow_code, _, slow_err = project.gate("slow")
    slow = project.json()
    fast_code, fast_out, fast_err = project.gate("good")
    fast = project.json()

    assert slow_code == 1
    assert "latency-p95-ms <= 100" in slow_err
    assert slow["candidate"]["budgets"]["latency-p95-ms"] >= 150  # sleeps 150 ms per call
    assert fast_code == 0, fast_out + fast_err
    assert fast["candidate"]["budgets"]["latency-p95-ms"] < 100
    assert 0 < fast["candidate"]["budgets"]["model-size-mb"] < 1


def test_latency_from_a_sample_file_and_relative_to_the_champion(project):
    gate = {"latency": {"sample": str(project.store.sample_csv), "drop-columns": ["label"], "batch-rows": 50,
                        "repeats": 5, "warmup": 1},
            "rules": [{"budget": "latency-p50-ms", "max-regression-pct": 100}]}
    project.write_config(gate)
    project.crown("good")

    code, out, _ = project.gate("slow")

    assert code == 1, out
    verdict = project.json()["verdicts"][0]
    assert verdict["kind"] == "budget-relative"
    assert verdict["observed"] > 2 * verdict["champion"]
    assert "latency-p50-ms" in project.json()["champion"]["budgets"]
    # The seconds spent loading and timing each model are announced, not silent.
    assert "measuring the candidate's latency (loading it, then" in out
    assert re.search(r"measuring the champion \(version \d+\)'s latency: p50 [\d.]+ ms, p95 [\d.]+ ms after ", out)


def test_missing_input_example_and_sample_is_reported_not_crashed(project, tmp_path):
    bad = tmp_path / "inputs.csv"
    bad.write_text("unrelated\n1\n", encoding="utf-8")
    project.write_config({"latency": {"sample": str(bad), "repeats": 2, "warmup": 0},
                          "rules": [{"budget": "latency-p95-ms", "max": 1000}]})
    code, _, err = project.gate("good")
    assert code == 1
    assert "latency-p95-ms <= 1000" in err
    verdict = project.json()["verdicts"][-1]
    assert verdict["missing"] is True
    assert "was not measured" in verdict["reason"]


@pytest.mark.parametrize("mode", ["alias", "tag"])
def test_markers_keep_exactly_one_holder_in_both_modes(project, mode):
    project.write_config({"rules": [ACCURACY_MIN]}, mode=mode)
    project.crown("good", mode=mode)

    assert project.gate("good")[0] == 0
    assert project.gate("slow")[0] == 0  # metrics as good as the champion

    assert f"registry: {mode} mode" in project.gate("good")[1]
    versions = project.registry(mode).latest_versions(project.model)
    holders = {marker: [v.version for v in versions if marker in v.aliases] for marker in ("champion", "candidate")}
    assert holders == {"champion": ["1"], "candidate": ["2"]}  # the rerun of "good" reused version 2
    assert [v.version for v in versions] == ["3", "2", "1"]
    if mode == "tag":
        assert all(v.tags.get("mlci.marker.candidate", "true") == "true" for v in versions)
        assert sum("mlci.marker.candidate" in v.tags for v in versions) == 1


def test_retried_gate_reuses_its_version(project):
    project.write_config({"rules": [ACCURACY_MIN]})
    assert project.gate("good")[0] == 0
    code, out, _ = project.gate("good")
    assert code == 0
    assert "reused" in out
    assert [v.version for v in project.registry().latest_versions(project.model)] == ["1"]


def test_openmetrics_parses_with_candidate_and_champion_labelled(project):
    project.write_config(STANDARD)
    project.crown("worse")
    assert project.gate("good")[0] == 0

    text = (project.out / "gate.metrics.txt").read_text(encoding="utf-8")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    accuracy = {s.labels["model"]: s.value for s in families["accuracy"].samples}
    assert accuracy == pytest.approx({"candidate": project.store.metrics["good"]["accuracy"],
                                      "champion": project.store.metrics["worse"]["accuracy"]})
    assert families["mlci_gate_passed"].samples[0].value == 1.0
    by_status = {s.labels["status"]: s.value for s in families["mlci_gate_rules"].samples}
    assert by_status == {"passed": 3.0, "failed": 0.0, "skipped": 0.0}


def test_artifacts_describe_every_rule(project):
    project.write_config(STANDARD)
    project.crown("good")
    project.gate("worse")

    cases = junit_cases(project)
    assert set(cases) == {"accuracy >= 0.8", "accuracy not worse than champion", "accuracy_slice_* >= 0.7"}
    assert all(c.get("classname").startswith("mlci-gate.") for c in cases.values())
    payload = project.json()
    assert payload["version"] == 1
    assert payload["champion"]["version"] == "1"
    assert payload["summary"]["blocking"] >= 2
    markdown = (project.out / "gate.md").read_text(encoding="utf-8")
    assert markdown.startswith("### ❌ Model gate failed")
    assert "| accuracy not worse than champion | ❌ failed |" in markdown


def test_warn_only_keeps_the_job_green_but_blesses_nothing(project, clean_env):
    project.write_config(STANDARD)
    project.crown("good")

    flag = project.gate("worse", "--warn-only")
    clean_env.setenv("MLCI_GATE_WARN_ONLY", "true")
    env_var = project.gate("worse")

    for code, _, err in (flag, env_var):
        assert code == 0
        assert "warn-only" in err
    assert project.env()["MLCI_GATE"] == "failed"
    assert project.env()["MLCI_MODEL_VERSION"] == ""
    assert project.json()["warn_only"] is True
    assert project.registry().get_marker(project.model, "candidate") is None


def test_warn_severity_failures_do_not_block(project):
    project.write_config({"rules": [ACCURACY_MIN, {"metric": "accuracy", "min": 0.99, "severity": "warn"}]})
    code, out, _ = project.gate("good")
    assert code == 0
    assert "WARN  accuracy >= 0.99" in out
    failure = junit_cases(project)["accuracy >= 0.99"].find("failure")
    assert failure.get("message").startswith("non-blocking:")


def test_run_id_comes_from_the_train_jobs_dotenv(project, clean_env):
    project.write_config({"rules": [ACCURACY_MIN]})
    clean_env.setenv("MLCI_RUN_ID", project.store.runs["good"])
    code, _, err = project.gate(None)
    assert code == 0, err
    assert project.env()["MLCI_RUN_ID"] == project.store.runs["good"]


def test_without_a_run_id_it_is_a_usage_error(project):
    project.write_config({"rules": [ACCURACY_MIN]})
    code, _, err = project.gate(None)
    assert code == 2
    assert "MLCI_RUN_ID" in err


def test_locally_the_run_comes_from_the_train_json_of_the_last_mlci_train(project):
    # `mlci train` then `mlci gate` on a laptop: no dotenv between them, but train.json is in mlci-out/.
    import json

    project.write_config({"rules": [ACCURACY_MIN]})
    project.out.mkdir(parents=True, exist_ok=True)
    (project.out / "train.json").write_text(json.dumps({"version": 1, "run_id": project.store.runs["good"]}))
    code, out, err = project.gate(None)
    assert code == 0, err
    assert f"candidate run {project.store.runs['good']} from" in out
    assert project.env()["MLCI_RUN_ID"] == project.store.runs["good"]


def test_unknown_run_is_an_external_error(project):
    project.write_config({"rules": [ACCURACY_MIN]})
    code, _, err = project._run_cli("--config", str(project.root / "mlci.yml"), "gate", "--run", "f" * 32)
    assert code == 3
    assert "HTTP 404" in err and "hint:" in err
    assert not (project.out / "gate.env").exists()


def test_a_run_without_a_model_cannot_be_blessed(project):
    project.write_config({"rules": [ACCURACY_MIN]})
    code, _, err = project.gate("no-model")
    assert code == 2
    assert "no MLflow model at artifact path 'model'" in err


def _write_two_rules(project, second_rule_key: str) -> None:
    """accuracy with both an absolute and a relative bound (line 7 on), then recall with `second_rule_key`."""
    (project.root / "mlci.yml").write_text(
        f"model:\n  name: {project.model}\n"
        f"mlflow:\n  tracking-uri: {project.store.uri}\n"
        "gate:\n"
        "  rules:\n"
        "    - metric: accuracy\n"
        "      min: 0.8\n"
        "      max-regression: 0.1\n"
        "    - metric: recall\n"
        f"      {second_rule_key}: 0.1\n",
        encoding="utf-8",
    )


def test_bad_rules_are_reported_at_their_line(project):
    _write_two_rules(project, "max-regresion")
    code, _, err = project.gate("good")
    assert code == 2
    assert "mlci.yml:11:7: gate.rules[1]: unknown key 'max-regresion'; did you mean 'max-regression'?" in err


def test_mixed_absolute_and_relative_rule_is_rejected_at_its_line(project):
    _write_two_rules(project, "max-regression")
    code, _, err = project.gate("good")
    assert code == 2
    assert "mlci.yml:7:7: rule for 'accuracy' mixes absolute (min) and champion-relative" in err
    assert "mlci.yml:10:7: comparison of 'recall' with the champion needs a direction" in err
