"""Export an MLflow model to ONNX with its ecosystem's converter, and quantize it.

One exporter per flavour: skl2onnx for scikit-learn, torch.onnx for PyTorch,
onnxmltools' converters (through skl2onnx) for LightGBM and XGBoost estimators,
also inside a scikit-learn Pipeline, and the model itself for a model that is
already ONNX. Each returns the
whole graph (class labels and scores for classifiers, so parity can compare
probabilities) and names the outputs that the served model keeps: the ones
that match what the original's pyfunc `predict` returns.

This is an I/O edge (it loads models and imports the converters lazily);
anything a converter refuses becomes Unsupported, naming the model class,
flavour, column or operator, so the job can fail clearly or fall back.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.errors import CheckFailed

# Tried in this order: the first flavour of the MLmodel that has an exporter wins.
EXPORTERS = ("onnx", "sklearn", "pytorch", "lightgbm", "xgboost")
# Flavours whose model is a scikit-learn-API estimator, converted by skl2onnx.
ESTIMATOR_FLAVORS = ("sklearn", "lightgbm", "xgboost")
# With quantization, these ONNX-ML operators are avoided so that the weights
# sit in MatMul nodes, which onnxruntime's dynamic quantization handles.
QUANTIZABLE_SKLEARN_AVOID = {"LinearClassifier", "LinearRegressor", "Scaler"}
DEFAULT_TORCH_OPSET = 17
# onnxmltools' tree converters write the ONNX-ML domain up to this version.
BOOSTER_ML_OPSET = 3


class Unsupported(CheckFailed):
    """The model, one of its operators or one of its inputs cannot be exported (exit 1 unless on-unsupported: warn)."""


@dataclass
class Exported:
    """An ONNX graph and how to feed and read it."""

    model: Any  # onnx.ModelProto with every output (labels and scores)
    exporter: str  # e.g. "skl2onnx 1.20.0"
    flavor: str
    model_class: str
    input_name: str
    input_dtype: Any  # numpy dtype of the single input tensor
    task: str  # classification | regression
    label_output: str | None  # classifiers: the graph output holding the class
    score_output: str | None  # probabilities (classifiers), predictions (regressors) or raw outputs
    served_outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Original:
    """The original model, loaded natively, answering like the served pyfunc does."""

    flavor: str
    model_class: str
    native: Any
    task: str
    predict: Any  # inputs -> labels (classifiers) or predictions
    scores: Any  # inputs -> probabilities / raw outputs, or None
    wants_frame: bool = False  # fed the DataFrame (keeps fitted feature names) instead of the float matrix


def flavours(model_dir: Path) -> dict[str, dict]:
    from mlflow.models import Model

    return dict(Model.load(str(model_dir)).flavors)


def choose_flavor(available: dict[str, dict]) -> str:
    for name in EXPORTERS:
        if name in available:
            return name
    shown = ", ".join(sorted(k for k in available if k != "python_function")) or "python_function only"
    raise Unsupported(
        f"no ONNX exporter for this model's flavour ({shown}): mlci exports scikit-learn (skl2onnx), "
        "LightGBM and XGBoost estimators (onnxmltools), PyTorch (torch.onnx) and models already logged as ONNX",
        hint="log an ONNX export yourself with mlflow.onnx.log_model, or set optimize.on-unsupported: warn "
        "to continue with the original model",
    )


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def normalize_opsets(model) -> None:
    """One opset_import entry per domain (the highest): some converters repeat the default domain,
    which onnxruntime's quantizer rejects."""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    if len(versions) == len(model.opset_import):
        return
    del model.opset_import[:]
    for domain, version in versions.items():
        added = model.opset_import.add()
        added.domain, added.version = domain, version


def check_runnable(model, what: str) -> None:
    """onnx's checker and an onnxruntime session: an operator the runtime lacks is named here."""
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(model)
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnx and onnxruntime raise their own, untyped errors
        raise Unsupported(f"{what}: onnxruntime cannot run the exported graph: {_short(exc)}",
                          hint="set optimize.opset to an opset the installed onnxruntime supports, or "
                          "optimize.on-unsupported: warn") from exc


def _guess_task(requested: str, is_classifier: bool) -> str:
    if requested != "auto":
        return requested
    return "classification" if is_classifier else "regression"


# -- scikit-learn --------------------------------------------------------------

def load_estimator(flavor: str, model_dir: Path):
    """The scikit-learn-API estimator of a sklearn, lightgbm or xgboost model."""
    import importlib

    native = importlib.import_module(f"mlflow.{flavor}").load_model(str(model_dir))
    if not hasattr(native, "get_params"):  # a lightgbm.Booster or xgboost.Booster
        example = "LGBMClassifier" if flavor == "lightgbm" else "XGBClassifier"
        raise Unsupported(
            f"the {flavor} model is a {type(native).__name__}: mlci exports {flavor}'s scikit-learn API "
            f"estimators ({example}, ...), whose predict() answers like the served model",
            hint=f"log the fitted estimator with mlflow.{flavor}.log_model, or set optimize.on-unsupported: warn",
        )
    return native


def feature_names(estimator) -> list[str] | None:
    """The column order the estimator was fitted with, when it kept one."""
    names = getattr(estimator, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def estimator_original(flavor: str, model_dir: Path, task: str) -> Original:
    import numpy as np
    from sklearn.base import is_classifier

    native = load_estimator(flavor, model_dir)
    task = _guess_task(task, is_classifier(native))
    scores = None
    if task == "classification" and hasattr(native, "predict_proba"):
        scores = lambda frame: np.asarray(native.predict_proba(frame))  # noqa: E731
    return Original(flavor, type(native).__name__, native, task,
                    predict=lambda frame: np.asarray(native.predict(frame)), scores=scores, wants_frame=True)


def _estimators(model):
    """The model and every estimator nested in it (Pipeline steps, ColumnTransformer parts, ensembles)."""
    yield model
    for name in ("steps", "transformers", "estimators"):
        for part in getattr(model, name, None) or ():
            inner = part[1] if isinstance(part, tuple) else part
            if hasattr(inner, "get_params"):
                yield from _estimators(inner)


def register_booster_converters(model) -> str | None:
    """Teach skl2onnx the LightGBM and XGBoost estimators found in `model`, with onnxmltools' converters.

    Returns "onnxmltools X" when one was needed. Only libraries the model already
    loaded are looked at, so a plain scikit-learn model imports neither.
    """
    modules = {type(part).__module__.split(".")[0] for part in _estimators(model)}
    wanted = modules & {"lightgbm", "xgboost"}
    if not wanted:
        return None
    try:
        import onnxmltools
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )
    except ModuleNotFoundError as exc:
        raise Unsupported(
            f"converting a {' and '.join(sorted(wanted))} estimator needs onnxmltools, which is not installed here",
            hint="install mlci[optimize] (it brings onnxmltools), or set optimize.on-unsupported: warn",
        ) from exc
    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if "lightgbm" in wanted:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier",
                                    calculate_linear_classifier_output_shapes, convert_lightgbm,
                                    options=classifier_options)
        update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
                                    convert_lightgbm, options={"split": None})
    if "xgboost" in wanted:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor

        update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                    convert_xgboost, options=classifier_options)
        update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
                                    convert_xgboost)
    return f"onnxmltools {onnxmltools.__version__}"


def _convertible_copy(model):
    """onnxmltools reads XGBoost trees by feature index ('f0', 'f1', ...): a copy whose boosters forgot the
    column names they were fitted with (the ONNX input is one matrix in that same order)."""
    if not any(hasattr(part, "get_booster") for part in _estimators(model)):
        return model
    model = copy.deepcopy(model)
    for part in _estimators(model):
        if hasattr(part, "get_booster"):
            part.get_booster().feature_names = None
    return model


def _non_numeric(frame) -> list[str]:
    import pandas as pd

    return [str(c) for c in frame.columns
            if not (pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]))]


def export_sklearn(original: Original, frame, *, opset: int | None, quantize: bool) -> Exported:
    import numpy as np
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    text_columns = _non_numeric(frame)
    if text_columns:
        raise Unsupported(
            f"input column(s) {', '.join(text_columns)} are not numeric: mlci exports scikit-learn models "
            "whose inputs are one numeric matrix",
            hint="encode those columns before the model, or set optimize.on-unsupported: warn",
        )
    helper = register_booster_converters(original.native)
    model = _convertible_copy(original.native)
    initial = [("input", FloatTensorType([None, frame.shape[1]]))]
    options = {id(model): {"zipmap": False}} if original.task == "classification" else None
    target = {"": opset} if opset else {}
    if helper:  # onnxmltools' converters lag behind onnx: pin both domains to what they were tested with
        target = {"": opset or skl2onnx.get_latest_tested_opset_version(), "ai.onnx.ml": BOOSTER_ML_OPSET}
    notes = []

    def convert(avoid):
        return skl2onnx.to_onnx(model, initial_types=initial, options=options, target_opset=target or None,
                                black_op=avoid)

    try:
        try:
            onx = convert(QUANTIZABLE_SKLEARN_AVOID if quantize else None)
            if quantize:
                notes.append("exported with standard ONNX operators (MatMul) instead of ONNX-ML linear and "
                             "scaler operators, so that quantization reaches the weights")
        except (MissingConverter, MissingShapeCalculator):
            raise
        except Exception:
            if not quantize:
                raise
            onx = convert(None)
    except (MissingConverter, MissingShapeCalculator) as exc:
        found = re.search(r"type '<class '([^']+)'>'", str(exc))
        name = found.group(1) if found else type(model).__name__
        raise Unsupported(
            f"skl2onnx {skl2onnx.__version__} has no converter for {name} (in the {original.model_class} "
            "model)",
            hint="register a converter with skl2onnx.update_registered_converter, or set "
            "optimize.on-unsupported: warn to continue with the original model",
        ) from exc
    except Exception as exc:  # skl2onnx raises RuntimeError/NotImplementedError for unsupported options
        raise Unsupported(f"skl2onnx could not convert {original.model_class}: {_short(exc)}",
                          hint="set optimize.on-unsupported: warn to continue with the original model") from exc
    normalize_opsets(onx)
    outputs = [o.name for o in onx.graph.output]
    classifier = original.task == "classification" and len(outputs) >= 2
    exporter = f"skl2onnx {skl2onnx.__version__}" + (f" with {helper}" if helper else "")
    return Exported(
        model=onx, exporter=exporter, flavor=original.flavor, model_class=original.model_class,
        input_name="input", input_dtype=np.float32, task=original.task,
        label_output=outputs[0] if classifier else None,
        score_output=outputs[1] if classifier else outputs[0],
        served_outputs=[outputs[0]],  # predict(): the class, or the regression value
        notes=notes,
    )


# -- PyTorch -------------------------------------------------------------------

def _pt2_path(model_dir: Path, conf: dict) -> Path | None:
    """MLflow 3 saves PyTorch models with torch.export (model.pt2) unless told to pickle them."""
    path = Path(model_dir) / conf.get("model_data", "data") / "model.pt2"
    return path if path.is_file() else None


def pytorch_original(model_dir: Path, conf: dict, task: str, sample) -> Original:
    import mlflow.pytorch
    import numpy as np
    import torch

    pt2 = _pt2_path(model_dir, conf)
    program = torch.export.load(str(pt2)) if pt2 else None
    native = program.module() if program is not None else mlflow.pytorch.load_model(str(model_dir),
                                                                                       map_location="cpu")
    if program is None:
        native.eval()

    def raw(matrix):
        with torch.no_grad():
            out = native(torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32)))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().cpu().numpy()

    if task == "auto":
        shape = raw(sample[:2]).shape
        task = "classification" if len(shape) == 2 and shape[1] > 1 else "regression"
    name = "ExportedProgram (pt2)" if program is not None else type(native).__name__
    return Original("pytorch", name, program if program is not None else native, task,
                    predict=(lambda m: raw(m).argmax(axis=1)) if task == "classification" else raw,
                    scores=raw)


def export_pytorch(original: Original, matrix, *, opset: int | None, exporter: str, workdir: Path) -> Exported:
    import numpy as np
    import onnx
    import torch

    dummy = torch.from_numpy(np.ascontiguousarray(np.resize(matrix, (max(2, len(matrix)), *matrix.shape[1:])),
                                                  dtype=np.float32)[:2])
    path = Path(workdir) / "torch-export.onnx"
    if isinstance(original.native, torch.export.ExportedProgram):
        exporter = "dynamo"  # a torch.export program (MLflow's pt2 format) is exported as it is, no re-tracing
    try:
        if isinstance(original.native, torch.export.ExportedProgram):
            torch.onnx.export(original.native, dynamo=True, opset_version=opset or None).save(str(path))
        elif exporter == "dynamo":
            program = torch.onnx.export(
                original.native, (dummy,), dynamo=True, input_names=["input"],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), opset_version=opset or None,
            )
            program.save(str(path))
        else:
            torch.onnx.export(
                original.native, (dummy,), str(path), dynamo=False, input_names=["input"],
                dynamic_axes={"input": {0: "batch"}}, opset_version=opset or DEFAULT_TORCH_OPSET,
            )
    except Exception as exc:  # UnsupportedOperatorError, OnnxExporterError, tracing errors
        operator = re.search(r"operator '([^']+)'", str(exc))
        what = f"operator {operator.group(1)}" if operator else original.model_class
        raise Unsupported(f"torch.onnx ({exporter}) cannot export {what}: {_short(exc)}",
                          hint="try optimize.torch-exporter: dynamo (or torchscript), another optimize.opset, "
                          "or optimize.on-unsupported: warn") from exc
    onx = onnx.load(str(path))
    normalize_opsets(onx)
    outputs = [o.name for o in onx.graph.output]
    return Exported(
        model=onx, exporter=f"torch.onnx {torch.__version__} ({exporter})", flavor="pytorch",
        model_class=original.model_class, input_name=onx.graph.input[0].name, input_dtype=np.float32,
        task=original.task, label_output=None, score_output=outputs[0], served_outputs=outputs,
    )


# -- already ONNX --------------------------------------------------------------

_ORT_NUMPY = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
              "tensor(int32)": "int32"}


def onnx_original(model_dir: Path, conf: dict, task: str) -> Original:
    import numpy as np
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(Path(model_dir) / conf.get("data", "model.onnx")))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    if len(session.get_inputs()) != 1:
        raise Unsupported(f"the ONNX model has {len(session.get_inputs())} inputs; mlci optimizes single-input "
                          "graphs")
    label, score = _label_and_score(session)
    task = task if task != "auto" else ("classification" if label else "regression")
    dtype = np.dtype(_ORT_NUMPY.get(session.get_inputs()[0].type, "float32"))
    feed = session.get_inputs()[0].name

    def run(name):
        return lambda matrix: np.asarray(session.run([name], {feed: np.asarray(matrix, dtype=dtype)})[0])

    return Original("onnx", "ONNX graph", graph, task,
                    predict=run(label) if label else run(score),
                    scores=run(score) if score else None)


def _label_and_score(session) -> tuple[str | None, str | None]:
    outputs = session.get_outputs()
    label = next((o.name for o in outputs if o.type in ("tensor(int64)", "tensor(int32)", "tensor(string)")), None)
    score = next((o.name for o in outputs if o.type in ("tensor(float)", "tensor(double)")), None)
    return label, score


def export_onnx(original: Original) -> Exported:
    import copy

    import numpy as np
    import onnxruntime as ort

    model = copy.deepcopy(original.native)
    normalize_opsets(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    label, score = _label_and_score(session)
    dtype = np.dtype(_ORT_NUMPY.get(session.get_inputs()[0].type, "float32"))
    return Exported(
        model=model, exporter="none (already ONNX)", flavor="onnx", model_class="ONNX graph",
        input_name=session.get_inputs()[0].name, input_dtype=dtype, task=original.task,
        label_output=label if original.task == "classification" else None, score_output=score,
        served_outputs=[o.name for o in session.get_outputs()],
    )


# -- quantization and the served graph -------------------------------------------

def quantize_dynamic_int8(model, workdir: Path) -> tuple[Any, int]:
    """(quantized model, number of quantized nodes). Nodes onnxruntime cannot quantize are left as they are."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = Path(workdir) / "float.onnx", Path(workdir) / "int8.onnx"
    onnx.save(model, str(source))
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the quantizer logs advice about static pre-processing on the root logger
    try:
        # ONNX-ML operators have no shape inference: assume float tensors where it is missing.
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    except Exception as exc:  # the quantizer raises ValueError/RuntimeError on graphs it cannot handle
        raise Unsupported(f"onnxruntime dynamic quantization failed: {_short(exc)}",
                          hint="set optimize.quantize: none, or optimize.on-unsupported: warn") from exc
    finally:
        quiet.setLevel(level)
    quantized = onnx.load(str(target))
    count = sum(node.op_type in ("DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul",
                                 "DynamicQuantizeLSTM", "ConvInteger", "QAttention") for node in quantized.graph.node)
    return quantized, count


def served_graph(exported: Exported, model):
    """The graph the server runs: only the outputs the original's predict() returns.

    MLflow's onnx pyfunc flattens every output into one DataFrame column, so a
    [rows, classes] probability output next to a [rows] label cannot be
    served; the label alone answers like the original model does.
    """
    from onnx.utils import Extractor

    outputs = [o.name for o in model.graph.output]
    if outputs == exported.served_outputs:
        return model
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    return Extractor(model).extract_model(inputs, exported.served_outputs)
