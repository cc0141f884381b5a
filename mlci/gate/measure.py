"""Budget measurements: model size on disk and pyfunc inference latency.

This is the gate's I/O edge (it loads models and reads sample files); the
decision itself stays in mlci.gate.core. Measurement problems are returned
as text per budget, so the verdict names them instead of the job crashing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError
from mlci.gate.policy import LatencySettings

SIZE = "model-size-mb"
P50 = "latency-p50-ms"
P95 = "latency-p95-ms"
LATENCY_BUDGETS = (P50, P95)


@dataclass
class Measurements:
    budgets: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def directory_size_mb(path: Path) -> float:
    """Bytes of every file under path, in MB (2**20 bytes)."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / float(1 << 20)


def time_calls(call: Callable[[], Any], *, repeats: int, warmup: int,
               tick: Callable[[], None] | None = None) -> list[float]:
    """Wall-clock milliseconds of `repeats` calls after `warmup` untimed ones; `tick()` after each call."""
    for _ in range(warmup):
        call()
        if tick is not None:
            tick()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000.0)
        if tick is not None:
            tick()
    return timings


def load_sample(settings: LatencySettings, *, where: Callable[[tuple], str]):
    """The sample batch (pandas DataFrame) from gate.latency.sample, or None to use the input_example."""
    if not settings.sample:
        return None
    path = Path(settings.sample)
    location = where(("gate", "latency", "sample"))
    if not path.is_file():
        raise ConfigError(f"latency sample file {str(path)!r} not found", location=location)
    import polars as pl

    try:
        frame = pl.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pl.read_csv(path)
    except Exception as exc:  # polars raises several types for unreadable files
        raise ConfigError(f"cannot read latency sample {str(path)!r}: {exc}", location=location) from exc
    unknown = [c for c in settings.drop_columns if c not in frame.columns]
    if unknown:
        raise ConfigError(f"drop-columns {unknown} are not columns of {str(path)!r} ({', '.join(frame.columns)})",
                          location=where(("gate", "latency", "drop-columns")))
    frame = frame.drop(list(settings.drop_columns)).head(settings.batch_rows)
    if frame.height == 0:
        raise ConfigError(f"latency sample {str(path)!r} has no rows", location=location)
    return frame.to_pandas()


def input_example(model_dir: Path, batch_rows: int):
    """The input_example logged with the model, or None."""
    from mlflow.models import Model

    example = Model.load(str(model_dir)).load_input_example(str(model_dir))
    if example is None:
        return None
    try:
        return example.head(batch_rows)
    except AttributeError:
        return example[:batch_rows]


def measure_model(
    model_dir: Path, wanted: set[str], settings: LatencySettings, sample=None, *, say=None, label: str = "model"
) -> tuple[Measurements, Any]:
    """Measure the wanted budgets of the MLflow model in model_dir.

    Returns the measurements and the sample batch used, so the champion can
    be timed on exactly the same input as the candidate. `say` hears what is
    being measured and how long it took (loading and timing take seconds).
    """
    from mlci.progress import Progress

    result = Measurements()
    if SIZE in wanted:
        result.budgets[SIZE] = directory_size_mb(model_dir)
    latency_wanted = [b for b in LATENCY_BUDGETS if b in wanted]
    if not latency_wanted:
        return result, sample
    try:
        if sample is None:
            sample = input_example(model_dir, settings.batch_rows)
        if sample is None:
            raise LookupError("no input_example was logged with the model and gate.latency.sample is not set")
        import mlflow.pyfunc

        progress = Progress(say, f"measuring the {label}'s latency")
        progress.start(f"loading it, then {settings.warmup} warm-up and {settings.repeats} timed predictions")
        model = mlflow.pyfunc.load_model(str(model_dir))
        timings = time_calls(lambda: model.predict(sample), repeats=settings.repeats, warmup=settings.warmup,
                             tick=progress.tick)
    except Exception as exc:  # any load/predict failure is a measurement error the verdict reports
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        for budget in latency_wanted:
            result.errors[budget] = message
        return result, sample
    result.budgets[P50] = percentile(timings, 50)
    result.budgets[P95] = percentile(timings, 95)
    progress.done(f"p50 {result.budgets[P50]:.1f} ms, p95 {result.budgets[P95]:.1f} ms")
    return result, sample
