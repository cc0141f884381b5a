"""The example model, served by onnxruntime (mlci optimize's export) vs scikit-learn's own predict.

Trains the tumor classifier exactly as examples/tumor-classifier/train.py does,
saves it as an MLflow sklearn model, exports it with mlci's exporter
(skl2onnx), once in float and once quantized (dynamic int8), and then, in
this one process, alternating call by call so machine noise hits every
contender alike:

- raw: sklearn `predict_proba` vs `onnxruntime.InferenceSession.run`
- served: `mlflow.pyfunc` of the sklearn model vs of the ONNX model (what
  `mlflow models serve` calls, schema enforcement included)

at batch 1 and batch 100, p50 and p95, and the size on disk of the MLflow
model directories and of the serialized model files. Ratios are
optimized / original: below 1 is faster or smaller.

    python benchmarks/optimize.py [--repeats 300] [--warmup 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "tumor-classifier"
NON_FEATURES = ["sample_id", "site", "collected_at", "target"]
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def percentile(values, q):
    from mlci.gate.measure import percentile as pct

    return pct(values, q)


def train():
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_parquet(EXAMPLE / "data" / "patients.parquet")
    features = [c for c in frame.columns if c not in NON_FEATURES]
    part, _ = train_test_split(frame, test_size=0.3, random_state=42, stratify=frame["target"])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(part[features], part["target"])
    reference = pd.read_parquet(EXAMPLE / "data" / "reference.parquet")[features]
    return model, reference


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    import mlflow.onnx
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    import onnxruntime as ort

    from mlci.optimize import export

    model, reference = train()
    work = Path(tempfile.mkdtemp(prefix="mlci-bench-optimize-"))
    original_dir = work / "sklearn"
    mlflow.sklearn.save_model(model, str(original_dir), input_example=reference.head(3),
                              pip_requirements=["scikit-learn"])
    original = export.Original("sklearn", type(model).__name__, model, "classification",
                               predict=model.predict, scores=model.predict_proba, wants_frame=True)
    contenders = {}
    for label, quantize in (("onnx float", False), ("onnx int8", True)):
        exported = export.export_sklearn(original, reference, opset=None, quantize=quantize)
        graph = exported.model
        if quantize:
            graph, _ = export.quantize_dynamic_int8(graph, work)
        saved = work / label.replace(" ", "-")
        signature = mlflow.models.ModelSignature(inputs=mlflow.models.infer_signature(reference).inputs)
        mlflow.onnx.save_model(export.served_graph(exported, graph), str(saved), signature=signature,
                               onnx_execution_providers=["CPUExecutionProvider"],
                               pip_requirements=["onnx", "onnxruntime"])
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        contenders[label] = (session, saved)

    served_original = mlflow.pyfunc.load_model(str(original_dir))
    served = {label: mlflow.pyfunc.load_model(str(saved)) for label, (_, saved) in contenders.items()}
    print(f"example tumor classifier ({type(model).__name__}: StandardScaler + LogisticRegression, "
          f"{reference.shape[1]} features); {args.repeats} timed calls each, alternating, after {args.warmup} warm-up")
    print(f"python {sys.version.split()[0]}, onnxruntime {ort.__version__}, cores {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    header = (f"{'batch':>5}  {'path':<7} {'contender':<11} {'p50 ms':>9} {'p95 ms':>9} "
              f"{'p50 ratio':>9} {'p95 ratio':>9}")
    print(header)
    print("-" * len(header))
    for rows in (1, 100):
        frame = reference.iloc[:rows] if rows <= len(reference) else reference.sample(rows, replace=True)
        matrix = frame.to_numpy(np.float32)
        calls = {
            ("raw", "sklearn"): lambda f=frame: model.predict_proba(f),
            ("served", "sklearn"): lambda f=frame: served_original.predict(f),
        }
        for label, (session, _) in contenders.items():
            calls[("raw", label)] = lambda s=session, m=matrix: s.run(None, {"input": m})
            calls[("served", label)] = lambda p=served[label], f=frame: p.predict(f)
        timings = {key: [] for key in calls}
        for _ in range(args.warmup):
            for call in calls.values():
                call()
        for _ in range(args.repeats):
            for key, call in calls.items():
                started = time.perf_counter()
                call()
                timings[key].append((time.perf_counter() - started) * 1000)
        for path in ("raw", "served"):
            base = timings[(path, "sklearn")]
            base50, base95 = percentile(base, 50), percentile(base, 95)
            for contender in ("sklearn", *contenders):
                values = timings[(path, contender)]
                p50, p95 = percentile(values, 50), percentile(values, 95)
                print(f"{rows:>5}  {path:<7} {contender:<11} {p50:>9.3f} {p95:>9.3f} "
                      f"{p50 / base50:>8.2f}x {p95 / base95:>8.2f}x")
    print()
    print(f"{'model':<11} {'MLflow dir bytes':>16} {'ratio':>6} {'model file bytes':>17} {'ratio':>6}")
    base_dir = size_of(original_dir)
    base_file = max((p for p in original_dir.iterdir() if p.suffix in (".pkl", ".skops")),
                    key=lambda p: p.stat().st_size).stat().st_size
    print(f"{'sklearn':<11} {base_dir:>16} {1:>5.2f}x {base_file:>17} {1:>5.2f}x")
    for label, (_, saved) in contenders.items():
        directory, file = size_of(saved), (saved / "model.onnx").stat().st_size
        print(f"{label:<11} {directory:>16} {directory / base_dir:>5.2f}x {file:>17} {file / base_file:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
