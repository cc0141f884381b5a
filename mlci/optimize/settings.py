"""The optimize section of mlci.yml as typed values (schema defaults already applied by the config layer)."""

from __future__ import annotations

from dataclasses import dataclass

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
# Metrics where a larger value is better; the rest are errors (smaller is better).
HIGHER_IS_BETTER = ("accuracy", "f1", "roc_auc", "r2")


@dataclass(frozen=True)
class ParityTolerances:
    max_abs_diff: float = 1e-4
    min_agreement: float = 1.0
    metric: str | None = None
    max_metric_delta: float | None = None


@dataclass(frozen=True)
class LatencyPlan:
    batch_size: int = 100
    repeats: int = 50
    warmup: int = 5


@dataclass(frozen=True)
class SampleSource:
    """Where parity and latency inputs come from; `path` None means the model's input_example."""

    path: str | None
    drop_columns: tuple[str, ...]
    label_column: str | None
    rows: int
    config_key: tuple[str, ...]  # the mlci.yml key the path came from, for error locations


@dataclass(frozen=True)
class OptimizeSettings:
    artifact_path: str = "model-onnx"
    on_unsupported: str = "fail"
    opset: int | None = None
    quantize: str = "none"
    task: str = "auto"
    sample: SampleSource = SampleSource(None, (), None, 1000, ("optimize", "sample"))
    parity: ParityTolerances = ParityTolerances()
    latency: LatencyPlan = LatencyPlan()
    torch_exporter: str = "torchscript"

    @property
    def quantized(self) -> bool:
        return self.quantize != "none"


def settings_from_config(config) -> OptimizeSettings:
    section = config.section("optimize") or {}
    parity = section.get("parity") or {}
    metric = parity.get("metric") or {}
    latency = section.get("latency") or {}
    label_column = section.get("label-column")
    if metric and ("name" not in metric or "max-delta" not in metric):
        raise config.error(("optimize", "parity", "metric"), "parity.metric needs both name and max-delta",
                           hint="e.g. metric: {name: accuracy, max-delta: 0.01}")
    if metric and not label_column:
        raise config.error(("optimize", "parity", "metric"),
                           f"parity.metric {metric['name']!r} needs the true labels: set optimize.label-column "
                           "to the sample column that holds them")
    if section.get("sample"):
        sample = SampleSource(section["sample"], tuple(section.get("drop-columns") or ()), label_column,
                              int(section.get("rows", 1000)), ("optimize", "sample"))
    else:
        gate_latency = config.get("gate", "latency", default={}) or {}
        drop = section.get("drop-columns")
        if drop is None:
            drop = gate_latency.get("drop-columns") or ()
        sample = SampleSource(gate_latency.get("sample"), tuple(drop), label_column,
                              int(section.get("rows", 1000)), ("gate", "latency", "sample"))
    if metric and not sample.path:
        raise config.error(("optimize", "parity", "metric"),
                           "parity.metric needs a sample file with labels (optimize.sample or gate.latency.sample)")
    return OptimizeSettings(
        artifact_path=section.get("artifact-path", "model-onnx"),
        on_unsupported=section.get("on-unsupported", "fail"),
        opset=section.get("opset"),
        quantize=section.get("quantize", "none"),
        task=section.get("task", "auto"),
        sample=sample,
        parity=ParityTolerances(
            max_abs_diff=float(parity.get("max-abs-diff", 1e-4)),
            min_agreement=float(parity.get("min-agreement", 1.0)),
            metric=metric.get("name"),
            max_metric_delta=float(metric["max-delta"]) if metric else None,
        ),
        latency=LatencyPlan(
            batch_size=int(latency.get("batch-size", 100)),
            repeats=int(latency.get("repeats", 50)),
            warmup=int(latency.get("warmup", 5)),
        ),
        torch_exporter=section.get("torch-exporter", "torchscript"),
    )
