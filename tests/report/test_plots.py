"""Plots: valid PNGs from real matplotlib, chosen from the data, skipped cleanly without inputs."""

from __future__ import annotations

import io
import struct

import pytest

from mlci.report import plots

pytestmark = pytest.mark.filterwarnings("error::UserWarning")  # e.g. glyph or layout warnings


def assert_png(data: bytes, min_size: int = 2000) -> tuple[int, int]:
    assert data[:8] == plots.PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 300 and height >= 200
    assert len(data) > min_size  # an empty canvas compresses to almost nothing
    from PIL import Image

    Image.open(io.BytesIO(data)).verify()  # raises on a truncated or corrupt file
    return width, height


def test_history_plot_marks_the_candidate_and_champion():
    history = [(f"run{i}", {"accuracy": 0.80 + i / 100, "val_loss": 0.5 - i / 50}) for i in range(6)]
    specs = plots.history_plots(history, {"accuracy": 0.9, "val_loss": 0.3}, [("accuracy", "higher"),
                                                                                ("val_loss", "lower")],
                                {"accuracy": 0.84})
    assert [s.name for s in specs] == ["history-accuracy.png", "history-val_loss.png"]
    data = specs[0].data
    assert data.candidate == 0.9 and data.champion == 0.84 and len(data.runs) == 6
    assert_png(plots.render_png(specs[0]))


def test_history_plot_is_skipped_for_a_metric_the_history_never_logged():
    history = [("a", {"accuracy": float("nan")}), ("b", {})]
    assert plots.history_plots(history, {"accuracy": 0.9}, [("accuracy", "higher")]) == []
    assert plots.history_plots([], {"accuracy": 0.9}, [("accuracy", "higher")]) == []


def test_integer_labels_give_a_confusion_matrix():
    y_true = [0, 1, 1, 0, 2, 2, 1]
    y_pred = [0, 1, 0, 0, 2, 1, 1]
    spec = plots.predictions_plot(y_true, y_pred)
    assert spec.name == "confusion-matrix.png"
    assert spec.data.labels == ("0", "1", "2")
    assert spec.data.matrix == ((2, 0, 0), (1, 2, 0), (0, 1, 1))
    assert_png(plots.render_png(spec))


def test_string_labels_and_float_encoded_classes_are_classification():
    spec = plots.predictions_plot(["cat", "dog", "dog"], ["dog", "dog", "cat"])
    assert spec.data.labels == ("cat", "dog")
    assert plots.predictions_plot([1.0, 0.0], [1.0, 1.0]).data.labels == ("0", "1")


def test_continuous_targets_give_residuals():
    y_true = [i / 10 for i in range(200)]
    y_pred = [v + (0.3 if i % 2 else -0.2) for i, v in enumerate(y_true)]
    spec = plots.predictions_plot(y_true, y_pred)
    assert spec.name == "residuals.png"
    assert_png(plots.render_png(spec))


def test_too_many_classes_fall_back_to_residuals_and_task_can_be_forced():
    many = list(range(100))
    assert plots.predictions_plot(many, many, max_classes=30).name == "residuals.png"
    assert plots.predictions_plot(many, many, task="classification").name == "confusion-matrix.png"
    assert plots.predictions_plot([0, 1], [1, 1], task="regression").name == "residuals.png"


def test_predictions_without_usable_values_draw_nothing():
    assert plots.predictions_plot([], []) is None
    assert plots.predictions_plot([None, None], [1, None]) is None
    assert plots.predictions_plot(["a", "b"], ["x", "y"], task="regression") is None


def test_drift_histograms_from_binned_counts_numeric_and_categorical():
    drift = {"columns": [
        {"column": "tenure", "drift": True, "histogram": {"edges": [0, 1, 2, 3], "reference": [10, 20, 30],
                                                           "current": [30, 20, 10]}},
        {"column": "plan", "drift": True, "categories": ["a", "b"], "reference": [5, 5], "current": [9, 1]},
        {"column": "stable", "drift": False, "histogram": {"edges": [0, 1], "reference": [1], "current": [1]}},
        {"column": "no-bins", "drift": True, "psi": 0.4},
    ]}
    specs = plots.drift_histograms(drift)
    assert [s.name for s in specs] == ["drift-tenure.png", "drift-plan.png"]
    for spec in specs:
        assert_png(plots.render_png(spec))
    assert plots.drift_histograms(None) == []
    assert plots.drift_histograms({"columns": "x"}) == []


def test_file_names_are_safe_and_unique():
    specs = plots.history_plots(
        [("a", {"a/b": 1.0, "a b": 2.0, "../x": 3.0})], {}, [("a/b", "higher"), ("a b", "higher"), ("../x", "higher")]
    )
    names = [s.name for s in plots.unique_names(specs)]
    assert names == ["history-a_b.png", "history-a_b-2.png", "history-x.png"]
    assert all("/" not in n for n in names)
