"""`mlci optimize` on the example model, against a real MLflow store, skl2onnx and onnxruntime."""

from __future__ import annotations

import pytest

from tests.optimize.conftest import QUANTIZED

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("optimize")]


def test_the_example_model_is_exported_quantized_and_passes_parity_with_real_figures(optimized):
    import mlflow
    from mlflow.models import Model

    from mlci.outputs.dotenv import read_dotenv

    code, project = optimized
    assert code == 0
    doc = project.json("optimize.json")
    assert doc["version"] == 1 and doc["status"] == "passed"
    assert doc["flavor"] == "sklearn" and doc["exporter"].startswith("skl2onnx")
    assert doc["quantize"] == "dynamic-int8" and doc["quantized-nodes"] > 0
    checks = {c["name"]: c for c in doc["parity"]["checks"]}
    assert set(checks) == {"max-abs-diff", "agreement", "metric-delta"}
    assert all(c["status"] == "passed" for c in checks.values())
    # Quantized weights really change the probabilities, within the configured tolerance.
    assert 0 < checks["max-abs-diff"]["observed"] <= 0.1
    assert checks["agreement"]["observed"] >= 0.98
    assert doc["parity"]["rows"] == 569 and doc["parity"]["metric"]["name"] == "accuracy"
    size = doc["size"]
    assert 0 < size["optimized-mb"] < size["original-mb"]
    assert size["ratio"] == pytest.approx(size["optimized-mb"] / size["original-mb"])
    assert set(doc["latency"]) == {"1", "100"}
    for figures in doc["latency"].values():
        for model in ("original", "optimized"):
            assert 0 < figures[model]["p50-ms"] <= figures[model]["p95-ms"]
        assert figures["p95-ratio"] == pytest.approx(figures["optimized"]["p95-ms"] / figures["original"]["p95-ms"])

    # Logged next to the original in the candidate run, as an MLflow model of the onnx flavour.
    tags = project.run_tags("example")
    assert tags["mlci.optimize.status"] == "passed"
    assert tags["mlci.optimize.artifact_path"] == "model-onnx"
    assert tags["mlci.optimize.model_uri"] == doc["model-uri"]
    mlflow.set_tracking_uri(project.store.uri)
    local = mlflow.artifacts.download_artifacts(doc["model-uri"], dst_path=str(project.root / "logged"))
    flavors = Model.load(local).flavors
    assert "onnx" in flavors and "python_function" in flavors
    assert read_dotenv(project.out / "optimize.env") == {"MLCI_OPTIMIZE": "passed",
                                                         "MLCI_OPTIMIZED_MODEL_URI": doc["model-uri"]}
    junit = (project.out / "optimize.junit.xml").read_text()
    assert 'tests="4"' in junit and 'failures="0"' in junit
    assert "size on disk" in (project.out / "optimize.md").read_text()


def test_zero_tolerance_on_the_quantized_model_fails_parity_and_blocks(project):
    strict = {**QUANTIZED, "parity": {**QUANTIZED["parity"], "max-abs-diff": 0}}
    project.write_config(optimize=strict)
    code, _out, err = project.mlci("optimize", "--run", project.store.runs["strict"])
    assert code == 1
    assert "parity of the optimized model" in err and "max-abs-diff" in err and "was not logged" in err
    doc = project.json("optimize.json")
    assert doc["status"] == "failed" and doc["model-uri"] is None
    failed = [c["name"] for c in doc["parity"]["checks"] if c["status"] == "failed"]
    assert failed == ["max-abs-diff"]
    assert (project.out / "optimize-failed.onnx").stat().st_size > 0
    tags = project.run_tags("strict")
    assert tags["mlci.optimize.status"] == "failed" and "mlci.optimize.model_uri" not in tags
    assert 'failures="1"' in (project.out / "optimize.junit.xml").read_text()


def test_an_unsupported_model_is_named_and_blocks_unless_told_to_warn(project):
    project.write_config()
    code, _, err = project.mlci("optimize", "--run", project.store.runs["unsupported"])
    assert code == 1
    assert "tests.optimize.estimators.MedianRegressor" in err and "skl2onnx" in err
    assert "on-unsupported: warn" in err
    assert project.json("optimize.json")["status"] == "unsupported"

    code, _out, err = project.mlci("--set", "optimize.on-unsupported=warn", "optimize",
                                  "--run", project.store.runs["unsupported"])
    assert code == 0
    assert "MedianRegressor" in err and "continuing with the original model" in err
    tags = project.run_tags("unsupported")
    assert tags["mlci.optimize.status"] == "unsupported" and "MedianRegressor" in tags["mlci.optimize.reason"]


def test_gate_budgets_measure_the_optimized_model_when_asked(optimized, project):
    code, _ = optimized
    assert code == 0
    budgets = [{"budget": "model-size-mb", "max": 50}, {"budget": "latency-p95-ms", "max": 5000}]
    project.write_config(gate={"rules": budgets, "budget-artifact": "optimized"})
    code, _, err = project.mlci("gate", "--run", project.store.runs["example"])
    assert code == 0, err
    gate = project.json("gate.json")
    assert "model-onnx" in gate["budget-artifacts"]["candidate"]
    optimized_size = optimized[1].json("optimize.json")["size"]["optimized-mb"]
    assert gate["candidate"]["budgets"]["model-size-mb"] == pytest.approx(optimized_size, rel=0.1)

    # A run that was never optimized has no optimized model to measure: the budgets fail, with the reason.
    code, _out, err = project.mlci("gate", "--run", project.store.runs["plain"])
    assert code == 1
    reasons = " ".join(v["reason"] for v in project.json("gate.json")["verdicts"])
    assert "mlci optimize did not run for this run" in reasons
