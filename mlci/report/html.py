"""ReportModel -> a standalone HTML page (report.html), for browsing the job artifacts.

Every value is HTML-escaped; images are referenced relative to the page
(report-plots/*.png next to it) so the artifact folder works offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from mlci.report.markdown import DIRECTION_ARROW, IMAGE_GROUPS, STATUS_ICON, VERDICT_ICON
from mlci.report.markup import fmt_delta, fmt_number, fmt_relative
from mlci.report.model import SAME, Delta, Link, ReportModel, RunRef, Section

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#1f1f1f}
body{padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.better{color:#1a7f37}.worse{color:#cf222e}.same{color:#6e7781}.passed{color:#1a7f37}.failed{color:#cf222e}
.warning{color:#9a6700}code{background:#f5f5f5;padding:0 .2rem;border-radius:3px}
.facts span{margin-right:1rem}.notes{color:#57606a;font-size:.9rem}img{max-width:100%;border:1px solid #eee}
"""


def _link(link: Link | RunRef | None, text: str | None = None) -> str:
    if link is None:
        return ""
    label = escape(text if text is not None else getattr(link, "text", ""))
    url = link.url
    if url.startswith(("http://", "https://")):
        return f'<a href="{escape(url)}">{label}</a>'
    return label


def _delta(delta: Delta | None) -> str:
    if delta is None or delta.verdict not in VERDICT_ICON:
        return "<td>—</td>"
    if delta.verdict == SAME:
        return '<td class="same">= same</td>'
    arrow = "" if delta.absolute is None else ("▲ " if delta.absolute > 0 else "▼ ")
    text = f"{arrow}{fmt_delta(delta.absolute)}"
    if delta.relative is not None:
        text += f" ({fmt_relative(delta.relative)})"
    return f'<td class="{delta.verdict}">{escape(text.strip())} {delta.verdict}</td>'


def _header(model: ReportModel) -> list[str]:
    h = model.header
    out = [f"<h1>Model report: <code>{escape(h.model_name)}</code></h1>", '<p class="facts">']
    gate = model.section("gate")
    if gate is not None:
        out.append(f'<span class="{escape(gate.status)}"><strong>Gate: {escape(gate.status)}</strong></span>')
    if h.model_version:
        out.append(f"<span>model version <code>{escape(h.model_version)}</code></span>")
    if h.candidate:
        name = f" ({escape(h.candidate.name)})" if h.candidate.name else ""
        out.append(f"<span>candidate run <code>{_link(h.candidate, h.candidate.run_id[:8])}</code>{name}</span>")
    if h.pipeline:
        out.append(f"<span>pipeline {_link(h.pipeline)}</span>")
    if h.job:
        out.append(f"<span>job {_link(h.job)}</span>")
    if h.commit:
        out.append(f"<span>commit <code>{_link(h.commit)}</code></span>")
    if h.source_branch and h.target_branch:
        out.append(f"<span><code>{escape(h.source_branch)}</code> → <code>{escape(h.target_branch)}</code></span>")
    out.append("</p>")
    compared = []
    if h.champion:
        version = f" v{escape(h.champion.version)}" if h.champion.version else ""
        compared.append(f"the champion{version} (run <code>{_link(h.champion, h.champion.run_id[:8])}</code>)")
    if h.target:
        compared.append(
            f"the latest <code>{escape(h.target_branch)}</code> run <code>{_link(h.target, h.target.run_id[:8])}</code>"
        )
    if compared:
        out.append(f"<p>Compared with {' and '.join(compared)}.</p>")
    return out


def _metrics(model: ReportModel) -> list[str]:
    if not model.metrics:
        return []
    head = ["Metric", "Candidate"]
    if model.has_champion:
        version = model.header.champion.version if model.header.champion else ""
        head += [f"Champion v{version}" if version else "Champion", "Δ vs champion"]
    if model.has_target:
        head += [f"{model.header.target_branch or 'target'} latest", "Δ vs target"]
    out = ["<h2>Metrics</h2>", "<table>", "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in head) + "</tr>"]
    for row in model.metrics:
        cells = [
            f"<td><code>{escape(row.name)}</code> {DIRECTION_ARROW[row.direction]}</td>",
            f'<td class="num">{fmt_number(row.candidate)}</td>',
        ]
        if model.has_champion:
            cells += [f'<td class="num">{fmt_number(row.champion)}</td>', _delta(row.vs_champion)]
        if model.has_target:
            cells += [f'<td class="num">{fmt_number(row.target)}</td>', _delta(row.vs_target)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</table>", '<p class="notes">↑ higher is better · ↓ lower is better · — no value</p>']
    return out


def _params(model: ReportModel) -> list[str]:
    if not model.params:
        return []
    head = ["Param", "Candidate"]
    head += (["Champion"] if model.has_champion else []) + (["Target"] if model.has_target else [])
    out = [f"<h2>Params changed ({len(model.params)})</h2>", "<table>"]
    out.append("<tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
    for change in model.params:
        values = [change.name, change.candidate]
        if model.has_champion:
            values.append(change.champion)
        if model.has_target:
            values.append(change.target)
        out.append("<tr>" + "".join(f"<td><code>{escape(v or '—')}</code></td>" for v in values) + "</tr>")
    out.append("</table>")
    return out


def _section(section: Section) -> list[str]:
    icon = STATUS_ICON.get(section.status, "")
    out = [
        f'<h2 class="{escape(section.status)}">{icon} {escape(section.title)}: {escape(section.headline)}</h2>'
    ]
    out += [f"<p>{escape(note)}</p>" for note in section.notes]
    table = section.table
    if table is not None and table.rows:
        out.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in table.columns) + "</tr>")
        for cells in table.rows:
            tds = []
            for column, cell in zip(table.columns, cells, strict=False):
                css = f' class="{escape(cell)}"' if column in ("Result", "Status") else ""
                tds.append(f"<td{css}>{escape(cell)}</td>")
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</table>")
    return out


def render_html(model: ReportModel, image_paths: Mapping[str, str] | None = None) -> str:
    image_paths = image_paths or {}
    body = _header(model) + _metrics(model) + _params(model)
    for section in model.sections:
        body += _section(section)
    shown = [img for img in model.images if img.name in image_paths]
    if shown:
        body.append("<h2>Plots</h2>")
        for kind, title in IMAGE_GROUPS:
            group = [img for img in shown if img.kind == kind]
            if group:
                body.append(f"<h3>{escape(title)}</h3>")
                body += [
                    f'<figure><img src="{escape(image_paths[img.name])}" alt="{escape(img.title)}">'
                    f"<figcaption>{escape(img.title)}</figcaption></figure>"
                    for img in group
                ]
    if model.notes:
        body.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in model.notes) + "</ul>")
    title = escape(f"Model report: {model.header.model_name}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
