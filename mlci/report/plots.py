"""Report plots: plain data in, PNG bytes out (matplotlib's Agg canvas, imported lazily).

Prediction artifact convention: the training script logs a table with columns
`y_true` and `y_pred` as a run artifact named `predictions.parquet` or
`predictions.csv` (report.predictions-artifacts). Classification labels give a
confusion matrix; continuous targets give a residuals plot.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class HistoryPlot:
    metric: str
    direction: str
    runs: tuple[tuple[str, float], ...]  # (label, value), oldest first
    candidate: float | None
    champion: float | None = None


@dataclass(frozen=True)
class ConfusionPlot:
    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]  # rows: true label, columns: predicted label


@dataclass(frozen=True)
class ResidualsPlot:
    y_true: tuple[float, ...]
    y_pred: tuple[float, ...]


@dataclass(frozen=True)
class DriftHistogram:
    column: str
    edges: tuple[float, ...] = ()  # numeric: bin edges, len(counts) + 1
    categories: tuple[str, ...] = ()  # categorical: one bar per category
    reference: tuple[float, ...] = ()
    current: tuple[float, ...] = ()


@dataclass(frozen=True)
class PlotSpec:
    name: str  # file name under report-plots/
    title: str
    kind: str  # "history" | "predictions" | "drift" (the Image kind)
    data: HistoryPlot | ConfusionPlot | ResidualsPlot | DriftHistogram


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "plot"


# ---------------------------------------------------------------- planning (pure)


def history_plots(
    history: Sequence[tuple[str, dict[str, float]]],
    candidate: dict[str, float],
    metrics: Sequence[tuple[str, str]],
    champion: dict[str, float] | None = None,
) -> list[PlotSpec]:
    """One plot per (metric, direction) with at least one finite value in the history."""
    specs = []
    for metric, direction in metrics:
        runs = tuple((label, float(m[metric])) for label, m in history if _finite(m.get(metric)))
        if not runs:
            continue
        specs.append(
            PlotSpec(
                name=f"history-{safe_name(metric)}.png",
                title=f"{metric} over the last {len(runs)} target-branch runs",
                kind="history",
                data=HistoryPlot(
                    metric,
                    direction,
                    runs,
                    float(candidate[metric]) if _finite(candidate.get(metric)) else None,
                    float(champion[metric]) if champion and _finite(champion.get(metric)) else None,
                ),
            )
        )
    return specs


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_label(value: object) -> bool:
    if isinstance(value, (str, bool)):
        return True
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def predictions_plot(
    y_true: Sequence[object], y_pred: Sequence[object], *, task: str = "auto", max_classes: int = 30
) -> PlotSpec | None:
    pairs = [(t, p) for t, p in zip(y_true, y_pred, strict=False) if t is not None and p is not None]
    if not pairs:
        return None
    if task == "auto":
        labels = {_label(v) for pair in pairs for v in pair}
        is_classes = all(_is_label(v) for pair in pairs for v in pair) and len(labels) <= max_classes
        task = "classification" if is_classes else "regression"
    if task == "classification":
        counts = Counter((_label(t), _label(p)) for t, p in pairs)
        labels = tuple(sorted({lbl for pair in counts for lbl in pair}, key=_natural_key))
        matrix = tuple(tuple(counts.get((t, p), 0) for p in labels) for t in labels)
        confusion = ConfusionPlot(labels, matrix)
        return PlotSpec("confusion-matrix.png", "Confusion matrix (candidate)", "predictions", confusion)
    numeric = [(float(t), float(p)) for t, p in pairs if _as_float(t) is not None and _as_float(p) is not None]
    numeric = [(t, p) for t, p in numeric if math.isfinite(t) and math.isfinite(p)]
    if not numeric:
        return None
    return PlotSpec(
        "residuals.png",
        "Residuals (candidate)",
        "predictions",
        ResidualsPlot(tuple(t for t, _ in numeric), tuple(p for _, p in numeric)),
    )


def _as_float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _natural_key(text: str):
    number = _as_float(text)
    return (0, number, "") if number is not None else (1, 0.0, text)


def drift_histograms(drift: dict | None, limit: int = 6) -> list[PlotSpec]:
    """Histograms of drifting columns when drift.json carries the binned counts."""
    if not isinstance(drift, dict):
        return []
    columns = drift.get("columns")
    if isinstance(columns, dict):
        columns = [{"column": k, **v} for k, v in columns.items() if isinstance(v, dict)]
    if not isinstance(columns, list):
        # `mlci data drift` nests columns per current dataset.
        datasets = drift.get("datasets") if isinstance(drift.get("datasets"), list) else []
        columns = [c for d in datasets if isinstance(d, dict) for c in d.get("columns") or []]
    specs = []
    for col in columns:
        if not isinstance(col, dict) or not (col.get("drift") is True or col.get("drifted") is True):
            continue
        hist = next((col[k] for k in ("histogram", "bins") if isinstance(col.get(k), dict)), col)
        reference = hist.get("reference") or hist.get("reference_counts") or hist.get("reference_hist")
        current = hist.get("current") or hist.get("current_counts") or hist.get("current_hist")
        edges = hist.get("edges") or hist.get("bin_edges") or hist.get("bins")
        categories = hist.get("categories") or hist.get("labels")
        name = str(col.get("column") or col.get("name") or "column")
        if not _numbers(reference) or not _numbers(current) or len(reference) != len(current):
            continue
        if _numbers(edges) and len(edges) == len(reference) + 1:
            data = DriftHistogram(
                name, edges=tuple(map(float, edges)), reference=tuple(reference), current=tuple(current)
            )
        elif isinstance(categories, list) and len(categories) == len(reference):
            data = DriftHistogram(
                name, categories=tuple(map(str, categories)), reference=tuple(reference), current=tuple(current)
            )
        else:
            continue
        specs.append(PlotSpec(f"drift-{safe_name(name)}.png", f"Drift: {name}", "drift", data))
        if len(specs) >= limit:
            break
    return specs


def _numbers(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_finite(v) for v in value)


def unique_names(specs: Iterable[PlotSpec]) -> list[PlotSpec]:
    """Two metrics that slug to the same file name must not overwrite each other."""
    seen: set[str] = set()
    result = []
    for spec in specs:
        name, stem, n = spec.name, spec.name[:-4], 2
        while name in seen:
            name, n = f"{stem}-{n}.png", n + 1
        seen.add(name)
        result.append(PlotSpec(name, spec.title, spec.kind, spec.data))
    return result


# ---------------------------------------------------------------- rendering


def render_png(spec: PlotSpec) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A Figure with its own Agg canvas: no pyplot global state, no GUI backend, safe in threads.
    fig = Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    data = spec.data
    if isinstance(data, HistoryPlot):
        _draw_history(fig, data)
    elif isinstance(data, ConfusionPlot):
        _draw_confusion(fig, data)
    elif isinstance(data, ResidualsPlot):
        _draw_residuals(fig, data)
    elif isinstance(data, DriftHistogram):
        _draw_drift(fig, data)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _draw_history(fig, data: HistoryPlot) -> None:
    ax = fig.add_subplot()
    xs = list(range(len(data.runs)))
    ax.plot(xs, [v for _, v in data.runs], marker="o", color="#1f6feb", label="target branch runs")
    labels = [label for label, _ in data.runs]
    if data.candidate is not None:
        xs_c = len(xs)
        ax.plot([xs_c], [data.candidate], marker="*", markersize=16, color="#d29922", linestyle="", label="candidate")
        labels.append("candidate")
    if data.champion is not None:
        ax.axhline(data.champion, color="#1a7f37", linestyle="--", linewidth=1, label="champion")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    arrow = "↑" if data.direction == "higher" else "↓"
    ax.set_title(f"{data.metric} ({arrow} better)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _draw_confusion(fig, data: ConfusionPlot) -> None:
    n = len(data.labels)
    fig.set_size_inches(max(4.0, 0.5 * n + 2.5), max(3.6, 0.5 * n + 2.0))
    ax = fig.add_subplot()
    image = ax.imshow(data.matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), data.labels, rotation=45 if n > 6 else 0, fontsize=8)
    ax.set_yticks(range(n), data.labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max((max(row) for row in data.matrix), default=0) or 1
    if n <= 15:
        for i, row in enumerate(data.matrix):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > peak / 2 else "black")
    ax.set_title("Confusion matrix", fontsize=10)


def _draw_residuals(fig, data: ResidualsPlot) -> None:
    residuals = [p - t for t, p in zip(data.y_true, data.y_pred, strict=False)]
    left, right = fig.subplots(1, 2)
    left.scatter(data.y_true, data.y_pred, s=6, alpha=0.5, color="#1f6feb")
    low, high = min(data.y_true + data.y_pred), max(data.y_true + data.y_pred)
    left.plot([low, high], [low, high], color="#6e7781", linestyle="--", linewidth=1)
    left.set_xlabel("y_true")
    left.set_ylabel("y_pred")
    left.set_title("Predicted vs true", fontsize=10)
    right.hist(residuals, bins=min(40, max(5, len(residuals) // 10)), color="#1f6feb", alpha=0.8)
    right.axvline(0, color="#6e7781", linestyle="--", linewidth=1)
    right.set_xlabel("y_pred − y_true")
    right.set_title("Residuals", fontsize=10)


def _draw_drift(fig, data: DriftHistogram) -> None:
    ax = fig.add_subplot()
    ref_total = sum(data.reference) or 1
    cur_total = sum(data.current) or 1
    ref = [v / ref_total for v in data.reference]
    cur = [v / cur_total for v in data.current]
    if data.edges:
        widths = [b - a for a, b in zip(data.edges, data.edges[1:], strict=False)]
        ax.bar(data.edges[:-1], ref, width=widths, align="edge", alpha=0.5, label="reference", color="#6e7781")
        ax.bar(data.edges[:-1], cur, width=widths, align="edge", alpha=0.5, label="current", color="#d29922")
    else:
        xs = range(len(data.categories))
        ax.bar([x - 0.2 for x in xs], ref, width=0.4, label="reference", color="#6e7781")
        ax.bar([x + 0.2 for x in xs], cur, width=0.4, label="current", color="#d29922")
        ax.set_xticks(list(xs), data.categories, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.set_title(f"{data.column}: reference vs current", fontsize=10)
    ax.legend(fontsize=7)
