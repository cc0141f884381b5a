"""Pure parts of the optimize stage: parity verdicts, which artifact is served, settings, report section."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlci.deploy.artifact import served_artifact
from mlci.optimize.parity import ModelOutputs, compare
from mlci.optimize.settings import ParityTolerances
from mlci.report.sections import optimize_section

LABELS = np.array([0, 1, 1, 0])
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])


def _compare(optimized: ModelOutputs, **tolerances):
    return compare(ModelOutputs(LABELS, PROBS), optimized, task="classification",
                   tolerances=ParityTolerances(**tolerances))


def test_a_difference_exactly_at_the_tolerance_passes_and_just_above_fails():
    shifted = PROBS + np.array([[0.05, -0.05], [0, 0], [0, 0], [0, 0]])
    assert _compare(ModelOutputs(LABELS, shifted), max_abs_diff=0.05).passed
    result = _compare(ModelOutputs(LABELS, shifted), max_abs_diff=0.0499)
    assert [c.name for c in result.failures] == ["max-abs-diff"]


def test_one_flipped_class_fails_full_agreement_and_names_the_rate():
    result = _compare(ModelOutputs(np.array([0, 1, 0, 0]), PROBS), min_agreement=1.0)
    failure = result.failures[0]
    assert failure.name == "agreement" and failure.observed == 0.75 and "1 differ" in failure.message
    assert _compare(ModelOutputs(np.array([0, 1, 0, 0]), PROBS), min_agreement=0.75).passed


def test_nan_and_shape_mismatches_never_pass():
    nan = PROBS.copy()
    nan[2, 1] = math.nan
    assert not _compare(ModelOutputs(LABELS, nan), max_abs_diff=1.0).passed
    result = _compare(ModelOutputs(LABELS, PROBS[:, 1]), max_abs_diff=1.0)
    assert "output shapes differ" in result.failures[0].message


def test_the_metric_delta_fails_when_the_optimized_model_scores_worse_than_allowed():
    y_true = np.array([0, 1, 1, 0])
    worse = ModelOutputs(np.array([0, 1, 0, 1]), PROBS)
    result = compare(ModelOutputs(LABELS, PROBS), worse, task="classification", y_true=y_true,
                     tolerances=ParityTolerances(max_abs_diff=1, min_agreement=0, metric="accuracy",
                                                 max_metric_delta=0.25))
    assert [c.name for c in result.failures] == ["metric-delta"]
    assert result.metric == {"name": "accuracy", "original": 1.0, "optimized": 0.5, "delta": -0.5}


def test_a_wrong_input_order_in_a_real_onnx_export_fails_parity():
    """The converted graph fed its columns reversed: exactly the silent bug parity exists for."""
    import onnxruntime as ort
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlci.optimize import export

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(300, 4)) * [1, 5, 10, 0.5], columns=list("abcd"))
    target = (frame["a"] + frame["b"] / 5 - frame["c"] / 10 > 0).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, target)
    original = export.Original("sklearn", "Pipeline", model, "classification",
                               predict=model.predict, scores=model.predict_proba, wants_frame=True)
    exported = export.export_sklearn(original, frame, opset=None, quantize=False)
    session = ort.InferenceSession(exported.model.SerializeToString())

    def run(matrix):
        labels, probs = session.run(None, {"input": matrix.astype(np.float32)})
        return ModelOutputs(labels, probs)

    before = ModelOutputs(model.predict(frame), model.predict_proba(frame))
    tolerances = ParityTolerances(max_abs_diff=1e-4, min_agreement=0.99)
    assert compare(before, run(frame.to_numpy()), task="classification", tolerances=tolerances).passed
    wrong = compare(before, run(frame[list("dcba")].to_numpy()), task="classification", tolerances=tolerances)
    assert {c.name for c in wrong.failures} == {"max-abs-diff", "agreement"}


@pytest.mark.parametrize(("tags", "artifact", "note"), [
    ({"mlci.optimize.status": "passed", "mlci.optimize.model_uri": "models:/m-1"}, "optimized", ""),
    ({"mlci.optimize.status": "unsupported", "mlci.optimize.reason": "no converter for X"}, "original",
     "no converter for X"),
    ({"mlci.optimize.status": "failed"}, "original", "ended failed"),
    ({}, "original", "did not run"),
])
def test_an_environment_asking_for_optimized_gets_it_or_the_original_with_the_reason(tags, artifact, note):
    served = served_artifact("optimized", "m", "3", tags)
    assert served.artifact == artifact
    assert served.model_uri == ("models:/m-1" if artifact == "optimized" else "models:/m/3")
    assert note in served.note and served.fallback == (artifact == "original")
    assert served_artifact("original", "m", "3", tags).model_uri == "models:/m/3"


def test_the_report_section_shows_sizes_latencies_and_parity():
    doc = {
        "version": 1, "status": "passed", "flavor": "sklearn", "exporter": "skl2onnx 1.20.0",
        "quantize": "dynamic-int8",
        "size": {"original-mb": 0.04, "optimized-mb": 0.01, "ratio": 0.25},
        "latency": {"1": {"original": {"p50-ms": 2.0, "p95-ms": 3.0}, "optimized": {"p50-ms": 1.0, "p95-ms": 1.5},
                          "p50-ratio": 0.5, "p95-ratio": 0.5}},
        "parity": {"status": "passed", "checks": [{"name": "max-abs-diff", "status": "passed", "message": "0.03"}]},
    }
    section = optimize_section(doc)
    assert section.status == "passed" and "size 0.25x" in section.headline
    assert ("latency p95, batch 1", "3 ms", "1.5 ms", "0.50x") in section.table.rows
    assert any("max-abs-diff passed" in note for note in section.notes)
    unsupported = optimize_section({"status": "unsupported", "reason": "no converter for X"})
    assert unsupported.status == "warning" and "original model is used" in unsupported.headline
    assert optimize_section(None) is None


def test_a_parity_metric_without_labels_is_a_located_config_error(tmp_path, run_cli, clean_env):
    (tmp_path / "mlci.yml").write_text("optimize:\n  parity:\n    metric: {name: accuracy, max-delta: 0.1}\n")
    code, _out, err = run_cli("--config", str(tmp_path / "mlci.yml"), "optimize", "--run", "abc")
    assert code == 2 and "mlci.yml:3:" in err and "label-column" in err
