"""ReportModel -> GitLab-flavoured markdown (the MR note and report.md).

The hidden `<!-- mlci-report:KEY -->` marker is not written here: the GitLab
adapter adds it when it posts, so the note can be found and updated in place.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlci.report.markup import fmt_delta, fmt_number, fmt_relative, md_code, md_link, md_text
from mlci.report.model import BETTER, SAME, WORSE, Delta, MetricRow, ReportModel, RunRef, Section, Table

STATUS_ICON = {
    "passed": "✅", "failed": "❌", "warning": "⚠️", "skipped": "⏭️", "info": "ℹ️", "drift": "⚠️", "stable": "✅",
}
VERDICT_ICON = {BETTER: "🟢", WORSE: "🔴", SAME: "⚪"}
DIRECTION_ARROW = {"higher": "↑", "lower": "↓"}
IMAGE_GROUPS = (("history", "Metric history"), ("predictions", "Predictions"), ("tune", "Tuning"),
                ("drift", "Drift histograms"))


def delta_cell(delta: Delta | None) -> str:
    """'▲ +0.012 (+1.30%) 🟢 better': arrow for the sign, colour and word for good or bad."""
    if delta is None:
        return "—"
    if delta.verdict == SAME:
        return "= ⚪ same"
    if delta.verdict not in VERDICT_ICON:
        return "—"
    if delta.absolute is None:  # infinities: only the direction is meaningful
        return f"{VERDICT_ICON[delta.verdict]} {delta.verdict}"
    arrow = "▲" if delta.absolute > 0 else "▼"
    relative = f" ({fmt_relative(delta.relative)})" if delta.relative is not None else ""
    return f"{arrow} {fmt_delta(delta.absolute)}{relative} {VERDICT_ICON[delta.verdict]} {delta.verdict}"


# GitLab refuses notes over 1,000,000 characters; a few hundred rows per table is plenty for review.
MAX_TABLE_ROWS = 200


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]], align: tuple[str, ...] | None = None) -> str:
    align = align or tuple(":--" for _ in columns)
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows[:MAX_TABLE_ROWS]]
    if len(rows) > MAX_TABLE_ROWS:
        lines += ["", f"_… {len(rows) - MAX_TABLE_ROWS} more rows in report.html (job artifacts)._"]
    return "\n".join(lines)


def _fold(summary: str, body: str, fold: bool) -> str:
    if not fold:
        return body
    # The blank lines let GitLab render the markdown inside the HTML block.
    return f"<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"


def _run_link(run: RunRef) -> str:
    label = md_code(run.run_id[:8], in_table=False)
    return f"[{label}]({run.url})" if run.url.startswith(("http://", "https://")) else label


def _header(model: ReportModel) -> list[str]:
    h = model.header
    lines = [f"## Model report: {md_code(h.model_name, in_table=False)}", ""]
    gate = model.section("gate")
    facts = []
    if gate is not None:
        fact = f"**Gate: {STATUS_ICON.get(gate.status, '')} {gate.status}**"
        blocking = model.failed_rules("gate")
        if gate.status == "failed" and blocking:
            shown = ", ".join(md_text(name, 60) for name in blocking[:3])
            fact += f" ({shown}{', …' if len(blocking) > 3 else ''})"
        facts.append(fact)
    if h.model_version:
        facts.append(f"model version {md_code(h.model_version, in_table=False)}")
    if h.candidate is not None:
        run = f"candidate run {_run_link(h.candidate)}"
        if h.candidate.name:
            run += f" ({md_text(h.candidate.name, 60)})"
        facts.append(run)
    if facts:
        lines += [" · ".join(facts), ""]
    where = []
    if h.pipeline:
        where.append(f"pipeline {md_link(h.pipeline.text, h.pipeline.url)}")
    if h.job:
        where.append(f"job {md_link(h.job.text, h.job.url)}")
    if h.commit:
        label = md_code(h.commit.text, in_table=False)
        where.append(f"commit [{label}]({h.commit.url})" if h.commit.url.startswith("http") else f"commit {label}")
    if h.source_branch and h.target_branch:
        where.append(f"{md_code(h.source_branch, 60, in_table=False)} → {md_code(h.target_branch, 60, in_table=False)}")
    if where:
        lines += [" · ".join(where), ""]
    compared = []
    if h.champion is not None:
        version = f" **v{md_text(h.champion.version)}**" if h.champion.version else ""
        compared.append(f"the champion{version} (run {_run_link(h.champion)})")
    if h.target is not None:
        branch = md_code(h.target_branch or "target", 60, in_table=False)
        compared.append(f"the latest {branch} run {_run_link(h.target)}")
    if compared:
        lines += ["Compared with " + " and ".join(compared) + ".", ""]
    return lines


def _baseline_label(model: ReportModel, kind: str) -> str:
    h = model.header
    if kind == "champion":
        return f"Champion v{md_text(h.champion.version)}" if h.champion and h.champion.version else "Champion"
    return f"{md_code(h.target_branch or 'target', 40, in_table=True)} latest"


def _metric_summary(rows: list[MetricRow], use_champion: bool) -> str:
    verdicts = [(r.vs_champion if use_champion else r.vs_target) for r in rows]
    counts = {v: sum(1 for d in verdicts if d is not None and d.verdict == v) for v in (WORSE, BETTER, SAME)}
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    return f"{len(rows)} metrics" + (f": {', '.join(parts)}" if parts else "")


def _metrics(model: ReportModel, fold_after: int) -> list[str]:
    if not model.metrics:
        return []
    columns = ["Metric", "Candidate"]
    align = [":--", "--:"]
    if model.has_champion:
        columns += [_baseline_label(model, "champion"), "Δ vs champion"]
        align += ["--:", ":--"]
    if model.has_target:
        columns += [_baseline_label(model, "target"), f"Δ vs {md_code(model.header.target_branch or 'target', 40)}"]
        align += ["--:", ":--"]
    rows = []
    for row in model.metrics:
        cells = [f"{md_code(row.name)} {DIRECTION_ARROW[row.direction]}", fmt_number(row.candidate)]
        if model.has_champion:
            cells += [fmt_number(row.champion), delta_cell(row.vs_champion)]
        if model.has_target:
            cells += [fmt_number(row.target), delta_cell(row.vs_target)]
        rows.append(tuple(cells))
    body = _table(tuple(columns), rows, tuple(align))
    legend = "<sub>↑ higher is better · ↓ lower is better · — no value</sub>"
    summary = _metric_summary(model.metrics, model.has_champion)
    return ["### Metrics", "", _fold(summary, body, len(rows) > fold_after), "", legend, ""]


def _params(model: ReportModel, fold_after: int) -> list[str]:
    if not model.params:
        return []
    columns = ["Param", "Candidate"]
    if model.has_champion:
        columns.append(_baseline_label(model, "champion"))
    if model.has_target:
        columns.append(_baseline_label(model, "target"))
    rows = []
    for change in model.params:
        cells = [md_code(change.name), md_code(change.candidate or "")]
        if model.has_champion:
            cells.append(md_code(change.champion or ""))
        if model.has_target:
            cells.append(md_code(change.target or ""))
        rows.append(tuple(cells))
    body = _table(tuple(columns), rows)
    title = f"### Params changed ({len(rows)})"
    return [title, "", _fold(f"{len(rows)} changed params", body, len(rows) > fold_after), ""]


def section_table(table: Table) -> str:
    rows = []
    for cells in table.rows:
        rendered = []
        for column, cell in zip(table.columns, cells, strict=False):
            if column in ("Result", "Status"):
                rendered.append(f"{STATUS_ICON.get(cell, '')} {md_text(cell)}".strip())
            else:
                rendered.append(md_text(cell) if cell else "")
        rows.append(tuple(rendered))
    return _table(table.columns, rows)


def _section(section: Section, fold_after: int) -> list[str]:
    icon = STATUS_ICON.get(section.status, "")
    status = f": {section.status}" if section.status in ("passed", "failed") else ""
    lines = [f"### {icon} {section.title}{status} — {md_text(section.headline, 200)}", ""]
    for note in section.notes:
        lines += [md_text(note, 300), ""]
    if section.table is not None and section.table.rows:
        body = section_table(section.table)
        lines += [_fold(f"{len(section.table.rows)} rows", body, len(section.table.rows) > fold_after), ""]
    return lines


def _images(model: ReportModel, image_urls: Mapping[str, str]) -> list[str]:
    shown = [img for img in model.images if img.name in image_urls]
    if not shown:
        return []
    lines = ["### Plots", ""]
    for kind, title in IMAGE_GROUPS:
        group = [img for img in shown if img.kind == kind]
        if not group:
            continue
        body = "\n\n".join(f"![{md_text(img.title)}]({image_urls[img.name]})" for img in group)
        if len(group) > 2:
            lines += [_fold(f"{title} ({len(group)})", body, True), ""]
        else:
            lines += [f"**{title}**", "", body, ""]
    return lines


def render_markdown(model: ReportModel, image_urls: Mapping[str, str] | None = None, *, fold_after: int = 12) -> str:
    lines = _header(model)
    lines += _metrics(model, fold_after)
    lines += _params(model, fold_after)
    for section in model.sections:
        lines += _section(section, fold_after)
    lines += _images(model, image_urls or {})
    if model.notes:
        lines += ["<sub>", "", *(f"- {md_text(note, 300)}" for note in model.notes), "", "</sub>", ""]
    lines.append("<sub>Written by mlci; this note is updated in place by later pipelines.</sub>")
    return "\n".join(lines).rstrip() + "\n"
