"""`mlci optimize` end to end: download, export, quantize, parity, measure, record.

The I/O edge of the optimize stage: it downloads the candidate through the
registry adapter, loads models, times them and logs the ONNX model into the
candidate run. The decisions (parity) are pure, in mlci.optimize.parity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError
from mlci.optimize import export
from mlci.optimize.parity import ModelOutputs, ParityResult, compare
from mlci.optimize.settings import OptimizeSettings

STATUS_TAG = "mlci.optimize.status"
ARTIFACT_TAG = "mlci.optimize.artifact_path"
MODEL_URI_TAG = "mlci.optimize.model_uri"
QUANTIZE_TAG = "mlci.optimize.quantize"
SUMMARY_TAG = "mlci.optimize.summary"
REASON_TAG = "mlci.optimize.reason"
PASSED, FAILED, UNSUPPORTED = "passed", "failed", "unsupported"
# The stage targets CPU serving (MLflow's default list names CUDA first and warns on every load without it).
CPU_ONLY = ["CPUExecutionProvider"]


@dataclass
class Inputs:
    """The sample as each model is fed: a DataFrame for column signatures, a float matrix otherwise."""

    frame: Any  # pandas DataFrame of the feature columns, in the model's order
    matrix: Any  # numpy float32 [rows, features]
    y_true: Any  # numpy array or None
    source: str
    by_columns: bool  # feed the pyfuncs the DataFrame (True) or the matrix
    signature: Any  # mlflow ModelSignature or None
    example: Any  # input example for the logged ONNX model
    notes: list[str] = field(default_factory=list)

    def batch(self, rows: int):
        """`rows` rows, repeating the sample when it is shorter."""
        import numpy as np
        import pandas as pd

        data = self.frame if self.by_columns else self.matrix
        if len(data) >= rows:
            return data.iloc[:rows] if self.by_columns else data[:rows]
        repeats = -(-rows // len(data))
        if self.by_columns:
            return pd.concat([data] * repeats, ignore_index=True).iloc[:rows]
        return np.concatenate([data] * repeats)[:rows]


@dataclass
class Outcome:
    status: str
    run_id: str
    artifact_path: str = ""
    flavor: str = ""
    model_class: str = ""
    exporter: str = ""
    opset: int | None = None
    quantize: str = "none"
    quantized_nodes: int = 0
    parity: ParityResult | None = None
    size: dict[str, float] = field(default_factory=dict)
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_uri: str = ""
    sample: str = ""
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    failed_model_file: str = ""


# -- sample ----------------------------------------------------------------------

def _read_table(path: Path, location: str):
    import polars as pl

    if not path.is_file():
        raise ConfigError(f"optimize sample file {str(path)!r} not found", location=location)
    try:
        frame = pl.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pl.read_csv(path)
    except Exception as exc:  # polars raises several types for unreadable files
        raise ConfigError(f"cannot read optimize sample {str(path)!r}: {exc}", location=location) from exc
    return frame.to_pandas()


def load_inputs(model_dir: Path, settings: OptimizeSettings, *, where: Callable[[tuple], str],
                feature_names: list[str] | None = None) -> Inputs:
    """The sample, reduced to the model's inputs in the model's order (signature, else fitted feature names)."""
    import numpy as np
    import pandas as pd
    from mlflow.models import Model

    mlmodel = Model.load(str(model_dir))
    signature = mlmodel.signature
    source = settings.sample
    notes: list[str] = []
    y_true = None
    if source.path:
        location = where(source.config_key)
        frame = _read_table(Path(source.path), location)
        wanted = [*source.drop_columns, *([source.label_column] if source.label_column else [])]
        unknown = [c for c in wanted if c not in frame.columns]
        if unknown:
            raise ConfigError(f"columns {unknown} are not in the optimize sample {source.path!r} "
                              f"({', '.join(map(str, frame.columns))})", location=location)
        frame = frame.head(source.rows)
        if source.label_column:
            y_true = frame[source.label_column].to_numpy()
        frame = frame.drop(columns=list(dict.fromkeys(wanted)))
        shown = f"{source.path} ({len(frame)} rows)"
    else:
        example = mlmodel.load_input_example(str(model_dir))
        if example is None:
            raise ConfigError(
                "mlci optimize has no sample: optimize.sample and gate.latency.sample are not set and no "
                "input_example was logged with the model", location=where(("optimize",)),
                hint="point optimize.sample at a CSV or Parquet file of model inputs (labels in drop-columns)",
            )
        frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(np.asarray(example))
        shown = f"the model's input_example ({len(frame)} rows)"
        notes.append(f"parity was checked on the {len(frame)} rows of the input_example only; "
                     "set optimize.sample for a real sample")
    if len(frame) == 0:
        raise ConfigError(f"the optimize sample {shown} has no rows", location=where(source.config_key))

    by_columns = bool(signature is not None and signature.inputs is not None
                      and not signature.inputs.is_tensor_spec() and signature.inputs.has_input_names())
    names = signature.inputs.input_names() if by_columns else feature_names
    if names:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ConfigError(
                f"the optimize sample lacks model inputs {missing}", location=where(source.config_key),
                hint="the sample needs every column of the model's signature (extra columns go in drop-columns)",
            )
        extra = [str(c) for c in frame.columns if c not in names]
        if extra:
            notes.append(f"sample columns not fed to the model: {', '.join(extra)}")
        frame = frame[list(names)]
    try:
        matrix = frame.to_numpy(dtype=np.float32)
    except (TypeError, ValueError):
        matrix = None  # non-numeric inputs: the exporter names the columns
    example_rows = frame.head(3) if by_columns else (matrix[:3] if matrix is not None else None)
    return Inputs(frame=frame, matrix=matrix, y_true=y_true, source=shown, by_columns=by_columns,
                  signature=signature, example=example_rows, notes=notes)


# -- measurement -------------------------------------------------------------------

def _timings(predict, batch, *, repeats: int, warmup: int) -> dict[str, float]:
    from mlci.gate.measure import percentile, time_calls

    timings = time_calls(lambda: predict(batch), repeats=repeats, warmup=warmup)
    return {"p50-ms": percentile(timings, 50), "p95-ms": percentile(timings, 95)}


def measure(original_dir: Path, optimized_dir: Path, inputs: Inputs, settings: OptimizeSettings):
    """Size on disk and pyfunc latency of both models, in this process, interleaved per batch size."""
    import mlflow.pyfunc

    from mlci.gate.measure import directory_size_mb

    size_original = directory_size_mb(original_dir)
    size_optimized = directory_size_mb(optimized_dir)
    size = {"original-mb": size_original, "optimized-mb": size_optimized,
            "ratio": size_optimized / size_original if size_original else float("nan")}
    original = mlflow.pyfunc.load_model(str(original_dir))
    optimized = mlflow.pyfunc.load_model(str(optimized_dir))
    plan = settings.latency
    latency: dict[str, dict[str, Any]] = {}
    for rows in dict.fromkeys((1, plan.batch_size)):
        batch = inputs.batch(rows)
        before = _timings(original.predict, batch, repeats=plan.repeats, warmup=plan.warmup)
        after = _timings(optimized.predict, batch, repeats=plan.repeats, warmup=plan.warmup)
        latency[str(rows)] = {
            "original": before, "optimized": after,
            "p50-ratio": after["p50-ms"] / before["p50-ms"] if before["p50-ms"] else float("nan"),
            "p95-ratio": after["p95-ms"] / before["p95-ms"] if before["p95-ms"] else float("nan"),
        }
    return size, latency


# -- the stage -----------------------------------------------------------------------

def _original_for(flavor: str, model_dir: Path, conf: dict, settings: OptimizeSettings, inputs: Inputs | None):
    try:
        return _load_original(flavor, model_dir, conf, settings, inputs)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "sklearn", "lightgbm", "xgboost"):
            raise ConfigError(
                f"loading the {flavor} model needs the Python package {exc.name.split('.')[0]!r}, which is "
                "not installed here",
                hint="run mlci-optimize in an image that has the model's own libraries (the template's image input)",
            ) from exc
        raise


def _load_original(flavor: str, model_dir: Path, conf: dict, settings: OptimizeSettings, inputs: Inputs | None):
    if flavor in export.ESTIMATOR_FLAVORS:
        return export.estimator_original(flavor, model_dir, settings.task)
    if flavor == "pytorch":
        return export.pytorch_original(model_dir, conf, settings.task, inputs.matrix)
    return export.onnx_original(model_dir, conf, settings.task)


def _outputs_of_original(original: export.Original, inputs: Inputs) -> ModelOutputs:
    data = inputs.frame if original.wants_frame else inputs.matrix
    labels = original.predict(data) if original.task == "classification" else None
    scores = original.scores(data) if original.scores is not None else original.predict(data)
    return ModelOutputs(labels=labels, scores=scores)


def _outputs_of_graph(exported: export.Exported, model, matrix) -> ModelOutputs:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    wanted = [name for name in (exported.label_output, exported.score_output) if name]
    values = dict(zip(wanted, session.run(wanted, {exported.input_name: matrix.astype(exported.input_dtype)}),
                      strict=True))
    scores = values.get(exported.score_output) if exported.score_output else None
    labels = None
    if exported.task == "classification":
        labels = values.get(exported.label_output) if exported.label_output else np.asarray(scores).argmax(axis=1)
    return ModelOutputs(labels=labels, scores=scores)


def optimize(registry, settings: OptimizeSettings, *, run_id: str, artifact_path: str, workdir: Path,
             where: Callable[[tuple], str], log: Callable[[str], None]) -> tuple[Outcome, Path | None, Any]:
    """Export, quantize, check parity and measure. Returns (outcome, saved ONNX model dir, inputs).

    Raises export.Unsupported for a model that cannot be exported; the caller
    decides between failing and falling back to the original.
    """
    import mlflow.onnx
    import onnx
    import onnxruntime as ort

    outcome = Outcome(status=FAILED, run_id=run_id, artifact_path=settings.artifact_path,
                      quantize=settings.quantize, opset=settings.opset)
    original_dir = registry.download_run_artifacts(run_id, artifact_path, workdir / "original")
    available = export.flavours(original_dir)
    flavor = export.choose_flavor(available)
    original, feature_names = None, None
    if flavor in export.ESTIMATOR_FLAVORS:
        # An estimator loads without a sample, and the column order it was fitted with shapes how the sample is read.
        original = _original_for(flavor, original_dir, available.get(flavor, {}), settings, None)
        feature_names = export.feature_names(original.native)
    inputs = load_inputs(original_dir, settings, where=where, feature_names=feature_names)
    outcome.sample = inputs.source
    outcome.notes.extend(inputs.notes)
    log(f"sample: {inputs.source}")

    if original is None:
        original = _original_for(flavor, original_dir, available.get(flavor, {}), settings, inputs)
    outcome.flavor, outcome.model_class = flavor, original.model_class
    if flavor in export.ESTIMATOR_FLAVORS:
        exported = export.export_sklearn(original, inputs.frame, opset=settings.opset, quantize=settings.quantized)
    elif inputs.matrix is None:
        raise export.Unsupported(f"the {flavor} model's sample inputs are not numeric")
    elif flavor == "pytorch":
        exported = export.export_pytorch(original, inputs.matrix, opset=settings.opset,
                                         exporter=settings.torch_exporter, workdir=workdir)
    else:
        exported = export.export_onnx(original)
    outcome.exporter = exported.exporter
    outcome.notes.extend(exported.notes)
    outcome.opset = next((o.version for o in exported.model.opset_import if o.domain in ("", "ai.onnx")), None)
    export.check_runnable(exported.model, f"{original.model_class} exported by {exported.exporter}")
    log(f"exported {flavor} model {original.model_class} with {exported.exporter} (opset {outcome.opset})")

    model = exported.model
    if settings.quantized:
        model, outcome.quantized_nodes = export.quantize_dynamic_int8(model, workdir)
        export.check_runnable(model, "the quantized model")
        if outcome.quantized_nodes == 0:
            outcome.notes.append("quantization found no MatMul, Gemm, convolution or recurrent weights to "
                                 "quantize: the quantized model computes like the float one")
        log(f"quantized (dynamic int8): {outcome.quantized_nodes} quantization nodes")

    task = original.task
    before = _outputs_of_original(original, inputs)
    after = _outputs_of_graph(exported, model, inputs.matrix)
    outcome.parity = compare(before, after, task=task, tolerances=settings.parity, y_true=inputs.y_true)

    served = export.served_graph(exported, model)
    saved = workdir / "optimized"
    signature = _onnx_signature(inputs)
    mlflow.onnx.save_model(served, str(saved), signature=signature, input_example=inputs.example,
                           pip_requirements=[f"onnx=={onnx.__version__}", f"onnxruntime=={ort.__version__}"],
                           onnx_execution_providers=CPU_ONLY,
                           metadata={"mlci.source_run": run_id, "mlci.exporter": exported.exporter,
                                     "mlci.quantize": settings.quantize})
    outcome.size, outcome.latency = measure(original_dir, saved, inputs, settings)
    outcome.status = PASSED if outcome.parity.passed else FAILED
    return outcome, saved, (served, signature, inputs)


def _onnx_signature(inputs: Inputs):
    """The original's input schema (so the server checks and orders columns the same way), outputs left open."""
    from mlflow.models import ModelSignature, infer_signature

    if inputs.signature is not None and inputs.signature.inputs is not None:
        return ModelSignature(inputs=inputs.signature.inputs)
    sample = inputs.frame if inputs.by_columns else inputs.matrix[:3]
    return ModelSignature(inputs=infer_signature(sample).inputs)


def summary_text(outcome: Outcome) -> str:
    parts = []
    if outcome.size:
        parts.append(f"size x{outcome.size['ratio']:.2f}")
    for rows, figures in outcome.latency.items():
        parts.append(f"p95@{rows} x{figures['p95-ratio']:.2f}")
    if outcome.parity is not None:
        diff = outcome.parity.value("max-abs-diff")
        if diff is not None:
            parts.append(f"max-abs-diff {diff:.3g}")
        agreement = outcome.parity.value("agreement")
        if agreement is not None:
            parts.append(f"agreement {agreement:.2%}")
    return ", ".join(parts)


def record(registry, outcome: Outcome, *, served_model=None, signature=None, example=None) -> None:
    """Tags on the candidate run; on success also the ONNX model, logged next to the original."""
    from mlci.adapters.mlflow import mlflow_errors, tracking_uri_scope

    tags = {STATUS_TAG: outcome.status, QUANTIZE_TAG: outcome.quantize, SUMMARY_TAG: summary_text(outcome)[:4000]}
    if outcome.reason:
        tags[REASON_TAG] = outcome.reason[:4000]
    with mlflow_errors(registry.tracking_uri, f"record the optimization in run {outcome.run_id}"), \
            tracking_uri_scope(registry.tracking_uri):
        import mlflow
        import mlflow.onnx
        import onnx
        import onnxruntime as ort

        client = registry.client
        if outcome.status == PASSED and served_model is not None:
            # Resuming the finished run is how MLflow logs into an existing run; it ends FINISHED again.
            with mlflow.start_run(run_id=outcome.run_id):
                info = mlflow.onnx.log_model(
                    served_model, name=outcome.artifact_path, signature=signature, input_example=example,
                    pip_requirements=[f"onnx=={onnx.__version__}", f"onnxruntime=={ort.__version__}"],
                    onnx_execution_providers=CPU_ONLY,
                    metadata={"mlci.source_run": outcome.run_id, "mlci.exporter": outcome.exporter,
                              "mlci.quantize": outcome.quantize},
                )
            outcome.model_uri = info.model_uri
            tags[ARTIFACT_TAG] = outcome.artifact_path
            tags[MODEL_URI_TAG] = info.model_uri
        for key, value in tags.items():
            client.set_tag(outcome.run_id, key, value)


def read_run_record(tags: dict[str, str]) -> dict[str, str]:
    """What `record` left on a run (or a registered version, which copies the run's tags)."""
    return {
        "status": tags.get(STATUS_TAG, ""),
        "artifact-path": tags.get(ARTIFACT_TAG, ""),
        "model-uri": tags.get(MODEL_URI_TAG, ""),
        "quantize": tags.get(QUANTIZE_TAG, ""),
        "reason": tags.get(REASON_TAG, ""),
    }
