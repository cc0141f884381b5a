"""Renderers for `mlci data drift`: JSON payload, JUnit suites, markdown, terminal table, PNG plots."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlci.data.drift import ColumnDrift, DatasetDrift
from mlci.data.report import _md_escape
from mlci.outputs.junit import TestCase, TestSuite


@dataclass
class DriftSummary:
    reference: str
    datasets: list[DatasetDrift]
    reference_unavailable: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(d.drifted for d in self.datasets)

    def drifting_columns(self) -> list[str]:
        return sorted({c.column for d in self.datasets for c in d.columns if c.drifted})


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    if value != 0 and abs(value) < 10 ** -(digits - 1):
        return f"{value:.1e}"
    return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits - 1}f}"


def _column_json(c: ColumnDrift) -> dict:
    return {
        "column": c.column,
        "kind": c.kind,
        "status": c.status,
        "drift": c.drifted,
        "reasons": c.reasons,
        "note": c.note,
        "psi": c.psi,
        "ks_statistic": c.ks_statistic,
        "ks_pvalue": c.ks_pvalue,
        "chi2_statistic": c.chi2_statistic,
        "chi2_pvalue": c.chi2_pvalue,
        "unseen_fraction": c.unseen_fraction,
        "unseen_examples": c.unseen_examples,
        "reference_rows": c.reference_rows,
        "current_rows": c.current_rows,
        "reference_null_fraction": c.reference_null_fraction,
        "current_null_fraction": c.current_null_fraction,
        "thresholds": c.thresholds.as_dict() if c.thresholds else None,
        "bins": (
            {"labels": c.histogram.labels, "reference": c.histogram.reference, "current": c.histogram.current}
            if c.histogram else None
        ),
        "plot": c.plot,
    }


def to_json(summary: DriftSummary) -> dict:
    return {
        "drift": summary.drifted,
        "drifting_columns": summary.drifting_columns(),
        "reference": {"label": summary.reference, "available": not summary.reference_unavailable,
                      "reason": summary.reference_unavailable},
        "notes": summary.notes,
        "datasets": [
            {
                "current": d.label,
                "reference": d.reference_label,
                "reference_rows": d.reference_rows,
                "current_rows": d.current_rows,
                "sampled": d.sampled,
                "drift": d.drifted,
                "notes": d.notes,
                "columns": [_column_json(c) for c in d.columns],
            }
            for d in summary.datasets
        ],
    }


def _measures(c: ColumnDrift) -> str:
    parts = []
    if c.psi is not None:
        parts.append(f"PSI {_num(c.psi, 3)}")
    if c.ks_statistic is not None:
        parts.append(f"KS {_num(c.ks_statistic, 3)} (p={_num(c.ks_pvalue, 2)})")
    if c.chi2_pvalue is not None:
        parts.append(f"chi2 p={_num(c.chi2_pvalue, 2)}")
    if c.unseen_fraction:
        parts.append(f"unseen {c.unseen_fraction:.1%}")
    return ", ".join(parts)


def to_junit(summary: DriftSummary) -> list[TestSuite]:
    """One suite per current dataset, one testcase per column; a drifting column is a failure."""
    suites = []
    for d in summary.datasets:
        suite = TestSuite(name=f"drift {d.label}")
        for c in d.columns:
            case = TestCase(name=f"{c.column}: no drift", classname=f"drift.{d.label}")
            case.stdout = _measures(c)
            if c.drifted:
                case.status = "failed"
                case.message = "; ".join(c.reasons)
                case.details = "\n".join([case.message, _measures(c), f"reference: {d.reference_label}"])
            elif c.status == "skipped":
                case.status = "skipped"
                case.message = c.note
            suite.add(case)
        suites.append(suite)
    return suites


def to_markdown(summary: DriftSummary) -> str:
    if summary.reference_unavailable:
        return (f"### ⚪ Drift not measured\n\n{_md_escape(summary.reference_unavailable)}.\n")
    columns = summary.drifting_columns()
    head = (f"### ⚠️ Drift in {len(columns)} column(s): {', '.join(f'`{_md_escape(c)}`' for c in columns)}"
            if columns else "### ✅ No drift")
    lines = [head, "", f"Reference: {_md_escape(summary.reference)}"]
    for d in summary.datasets:
        lines += ["", f"#### `{_md_escape(d.label)}` ({d.current_rows:,} rows vs {d.reference_rows:,})", ""]
        lines += [f"> {_md_escape(note)}" for note in d.notes]
        lines += ["| | column | kind | PSI | KS (p) | chi² p | unseen | why |",
                  "|---|---|---|---:|---:|---:|---:|---|"]
        order = {"drift": 0, "ok": 1, "skipped": 2}
        for c in sorted(d.columns, key=lambda c: (order[c.status], c.column)):
            mark = {"drift": "⚠️", "ok": "✅", "skipped": "⏭️"}[c.status]
            ks = f"{_num(c.ks_statistic, 3)} ({_num(c.ks_pvalue, 2)})" if c.ks_statistic is not None else ""
            unseen = f"{c.unseen_fraction:.1%}" if c.unseen_fraction else ""
            why = "; ".join(c.reasons) if c.reasons else c.note
            if c.plot:
                why = f"{why} (plot: `{c.plot}`)"
            lines.append(f"| {mark} | `{_md_escape(c.column)}` | {c.kind} | {_num(c.psi, 3)} | {ks} | "
                         f"{_num(c.chi2_pvalue, 2)} | {unseen} | {_md_escape(why)} |")
    return "\n".join(lines) + "\n"


def to_terminal(summary: DriftSummary) -> str:
    if summary.reference_unavailable:
        return f"drift not measured: {summary.reference_unavailable}\nMLCI_DRIFT=false"
    lines = [f"reference: {summary.reference}"]
    for d in summary.datasets:
        lines.append(f"{d.label}  [{d.current_rows:,} rows vs {d.reference_rows:,}]")
        lines += [f"  note: {n}" for n in d.notes]
        width = min(32, max([len(c.column) for c in d.columns] + [6]))
        for c in d.columns:
            tag = {"drift": "DRIFT", "ok": "ok", "skipped": "skip"}[c.status]
            detail = "; ".join(c.reasons) if c.drifted else (c.note or _measures(c))
            line = f"  {tag:<5}  {c.column.ljust(width)}  {c.kind:<11}  {detail}"
            lines.append(line if len(line) <= 110 else line[:109] + "…")
    lines.append(f"MLCI_DRIFT={'true' if summary.drifted else 'false'}")
    return "\n".join(lines)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def plot_name(column: str, dataset: str | None = None) -> str:
    """A file name for a column's plot that no column name can escape from."""
    stem = _UNSAFE.sub("_", column).strip("._") or "column"
    if dataset:
        stem = f"{_UNSAFE.sub('_', Path(dataset).stem).strip('._') or 'data'}--{stem}"
    return f"{stem[:120]}.png"


def render_plot(c: ColumnDrift) -> bytes:
    """A PNG of reference vs current for one drifting column (matplotlib, Agg, no pyplot state)."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6), dpi=100)
    ax = fig.add_subplot()
    if c.samples is not None:
        ref, cur = c.samples
        both = np.concatenate([ref, cur])
        low, high = np.quantile(both, [0.005, 0.995])
        if low == high:
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, 41)
        ax.hist(np.clip(ref, low, high), bins=edges, density=True, alpha=0.55, label="reference")
        ax.hist(np.clip(cur, low, high), bins=edges, density=True, alpha=0.55, label="current")
        ax.set_ylabel("density")
    elif c.histogram is not None:
        labels = c.histogram.labels[:20]
        x = np.arange(len(labels))
        ax.bar(x - 0.2, c.histogram.reference[:20], width=0.4, label="reference")
        ax.bar(x + 0.2, c.histogram.current[:20], width=0.4, label="current")
        ax.set_xticks(x, [label[:14] for label in labels], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("share of rows")
    ax.set_title(f"{c.column[:60]}: {_measures(c)}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
