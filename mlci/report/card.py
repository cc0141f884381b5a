"""The model card of one registered version (pure: plain inputs in, markdown out).

Sections: summary, intended use, training data lineage, metrics, gate results,
and the owner/approver trail from the registry's audit records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlci.report import sections
from mlci.report.build import RunData
from mlci.report.markdown import STATUS_ICON, section_table
from mlci.report.markup import fmt_number, md_code, md_link, md_text
from mlci.report.metrics import direction_of, selected

# MLflow's SQL stores keep at most 5000 characters of a version description.
DESCRIPTION_LIMIT = 5000
_DATA_TAG = re.compile(
    r"^mlci\.data\.(?P<name>.+)\.(?P<field>sha256|digest|size_bytes|size|bytes|rows|path|source)$"
)
# The train wrapper also writes every file as one JSON list in this tag (real paths, not tag-safe names).
_DATA_LIST_TAG = "mlci.data"
_GATE_TAG_PREFIX = "mlci.gate."


@dataclass(frozen=True)
class DatasetRef:
    name: str
    digest: str = ""
    rows: str = ""
    size: str = ""
    source: str = ""
    context: str = ""


@dataclass(frozen=True)
class CardInputs:
    model_name: str
    version: str
    version_tags: Mapping[str, str] = field(default_factory=dict)
    markers: tuple[str, ...] = ()
    created_ms: int = 0
    source: str = ""
    run: RunData | None = None
    datasets: Sequence[DatasetRef] = ()
    audit: Sequence[Mapping[str, Any]] = ()
    gate: Mapping[str, Any] | None = None  # gate.json, when it is about this version
    owner: str = ""
    intended_use: str = ""
    directions: Mapping[str, str] = field(default_factory=dict)
    include_metrics: tuple[str, ...] = ("*",)
    exclude_metrics: tuple[str, ...] = ("system/*",)


def datasets_from_run(tags: Mapping[str, str], dataset_inputs: Sequence[Mapping[str, Any]]) -> list[DatasetRef]:
    """Training data lineage from `mlci.data.<name>.<field>` run tags and MLflow dataset inputs.

    Both are optional and merged by name; odd values are kept as text, never fatal.
    """
    by_name: dict[str, dict[str, str]] = {}
    listed = _json_list(tags.get(_DATA_LIST_TAG))
    for entry in listed:
        if isinstance(entry, Mapping) and entry.get("path"):
            fields = by_name.setdefault(str(entry["path"]), {})
            for source_key, name in (("sha256", "digest"), ("size_bytes", "size"), ("rows", "rows")):
                if entry.get(source_key) is not None:
                    fields[name] = str(entry[source_key])
    for key, value in tags.items():
        match = _DATA_TAG.match(key)
        if match and not listed:  # the per-file tags repeat the list under tag-safe names
            fields = by_name.setdefault(match["name"], {})
            renamed = {"sha256": "digest", "bytes": "size", "size_bytes": "size", "path": "source"}
            fields[renamed.get(match["field"], match["field"])] = str(value)
    for item in dataset_inputs:
        name = str(item.get("name") or "dataset")
        fields = by_name.setdefault(name, {})
        if item.get("digest"):
            fields.setdefault("digest", str(item["digest"]))
        profile = _json_object(item.get("profile"))
        rows = profile.get("num_rows") or profile.get("rows")
        if rows is not None:
            fields.setdefault("rows", str(rows))
        size = profile.get("size") or profile.get("num_bytes") or profile.get("bytes")
        if size is not None:
            fields.setdefault("size", str(size))
        source = _json_object(item.get("source"))
        where = source.get("uri") or source.get("path") or source.get("url") or item.get("source") or ""
        if where and not fields.get("source"):
            fields["source"] = str(where)
        if item.get("context"):
            fields["context"] = str(item["context"])
    return [DatasetRef(name=n, **{k: v for k, v in f.items() if k in DatasetRef.__dataclass_fields__})
            for n, f in sorted(by_name.items())]


def _json_list(value: Any) -> list:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:  # the tag is cut at 8000 characters for very many files
            return []
        return parsed if isinstance(parsed, list) else []
    return []


def _json_object(value: Any) -> dict:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _when(ms: int) -> str:
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _iso_when(text: str) -> str:
    """'2026-11-25T13:03:51.648884Z' -> '2026-11-25 13:03:51 UTC'; anything else unchanged."""
    match = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:Z|\+00:00)$", text)
    return f"{match[1]} {match[2]} UTC" if match else text


def _size(text: str) -> str:
    try:
        n = float(text)
    except ValueError:
        return md_text(text)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return text


def _summary(inputs: CardInputs) -> list[str]:
    tags = dict(inputs.run.tags) if inputs.run else {}
    tags.update({k: v for k, v in inputs.version_tags.items() if k.startswith("mlci.gitlab.")})
    rows = [
        ("Model", md_code(inputs.model_name)),
        ("Version", md_code(inputs.version)),
        ("Markers", ", ".join(md_code(m) for m in inputs.markers) or "none"),
        ("Registered", _when(inputs.created_ms)),
    ]
    if inputs.run is not None:
        rows.append(("Source run", md_code(inputs.run.run_id)))
    commit = tags.get("mlci.gitlab.commit") or tags.get("mlflow.source.git.commit")
    if commit:
        rows.append(("Commit", md_code(commit[:12])))
    if tags.get("mlci.gitlab.ref"):
        rows.append(("Branch", md_code(tags["mlci.gitlab.ref"])))
    pipeline = tags.get("mlci.gitlab.pipeline_id")
    if pipeline:
        rows.append(("Pipeline", md_link(f"#{pipeline}", tags.get("mlci.gitlab.pipeline_url", ""))))
    if inputs.owner:
        rows.append(("Owner", md_text(inputs.owner)))
    lines = ["| | |", "| :-- | :-- |"] + [f"| **{k}** | {v} |" for k, v in rows]
    return [*lines, ""]


def _data(inputs: CardInputs) -> list[str]:
    lines = ["## Training data", ""]
    if not inputs.datasets:
        return [*lines, "_No data lineage was recorded for the source run._", ""]
    lines += [
        "| Dataset | Context | Rows | Size | SHA-256 / digest | Source |",
        "| :-- | :-- | --: | --: | :-- | :-- |",
    ]
    for ds in inputs.datasets:
        lines.append(
            f"| {md_code(ds.name)} | {md_text(ds.context) or '—'} | {md_text(ds.rows) or '—'} | "
            f"{_size(ds.size) if ds.size else '—'} | {md_code(ds.digest, 80) if ds.digest else '—'} | "
            f"{md_code(ds.source, 80) if ds.source else '—'} |"
        )
    return [*lines, ""]


def _metrics(inputs: CardInputs) -> list[str]:
    lines = ["## Metrics", ""]
    metrics = inputs.run.metrics if inputs.run else {}
    names = [n for n in sorted(metrics) if selected(n, inputs.include_metrics, inputs.exclude_metrics)]
    if not names:
        return [*lines, "_The source run logged no metrics._", ""]
    lines += ["| Metric | Value | Better |", "| :-- | --: | :-- |"]
    for name in names:
        direction = direction_of(name, inputs.directions)
        lines.append(f"| {md_code(name)} | {fmt_number(metrics[name])} | {direction} |")
    return [*lines, ""]


def _gate(inputs: CardInputs) -> list[str]:
    lines = ["## Gate", ""]
    tags = inputs.version_tags
    validated = tags.get("mlci.validated")
    if validated == "true":
        lines.append("✅ **Validated**: this version passed the gate (`mlci.validated=true`).")
    elif validated is not None:
        lines.append(f"❌ **Not validated** (`mlci.validated={md_text(validated)}`).")
    else:
        lines.append("⚠️ **No gate result** is recorded on this version.")
    lines.append("")
    gate_tags = sorted((k, v) for k, v in tags.items() if k.startswith(_GATE_TAG_PREFIX))
    if gate_tags:
        lines += ["| Gate tag | Value |", "| :-- | :-- |"]
        lines += [f"| {md_code(k)} | {md_code(v)} |" for k, v in gate_tags]
        lines.append("")
    section = sections.gate_section(inputs.gate) if inputs.gate else None
    if section is not None:
        icon = STATUS_ICON.get(section.status, "")
        lines += [f"Gate job result: {icon} {section.status} — {md_text(section.headline, 200)}", ""]
        if section.table is not None and section.table.rows:
            lines += [section_table(section.table), ""]
    return lines


_AUDIT_COLUMNS = (
    ("When", ("when",)),
    ("Who", ("who", "user")),
    ("Action", ("action",)),
    ("Marker / environment", ("marker", "environment")),
    ("From → to", ()),
    ("Pipeline", ("pipeline",)),
    ("Reason", ("reason",)),
)


def _audit(inputs: CardInputs) -> list[str]:
    lines = ["## Owner and approvals", ""]
    if inputs.owner:
        lines += [f"Owner: **{md_text(inputs.owner)}**", ""]
    if not inputs.audit:
        return [*lines, "_No marker moves or deployments are recorded for this version yet._", ""]
    approvers = sorted({str(r.get("who")) for r in inputs.audit if r.get("who")})
    if approvers:
        lines += ["Moved or approved by: " + ", ".join(md_text(a) for a in approvers), ""]
    lines += [
        "| " + " | ".join(c for c, _ in _AUDIT_COLUMNS) + " |",
        "| " + " | ".join(":--" for _ in _AUDIT_COLUMNS) + " |",
    ]
    for record in inputs.audit:
        cells = []
        for column, keys in _AUDIT_COLUMNS:
            if column == "From → to":
                before = record.get("from-version") or record.get("from_version")
                after = record.get("to-version") or record.get("to_version") or record.get("version")
                cells.append(f"{md_text(str(before)) if before else '—'} → {md_text(str(after)) if after else '—'}")
                continue
            value = next((record.get(k) for k in keys if record.get(k)), "")
            if column == "When":
                value = _iso_when(str(value))
            if column == "Pipeline" and value and record.get("pipeline-url"):
                cells.append(md_link(f"#{value}", str(record["pipeline-url"])))
            else:
                cells.append(md_text(str(value)) if value else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_card(inputs: CardInputs) -> str:
    lines = [f"# Model card: {md_code(inputs.model_name, in_table=False)} version {md_text(inputs.version)}", ""]
    lines += _summary(inputs)
    lines += ["## Intended use", ""]
    paragraphs = [p for p in re.split(r"\n\s*\n", inputs.intended_use) if p.strip()]
    if paragraphs:
        for paragraph in paragraphs:
            lines += [md_text(paragraph, 2000), ""]
    else:
        lines += ["_Not stated. Set `project.intended-use` in mlci.yml._", ""]
    lines += _data(inputs) + _metrics(inputs) + _gate(inputs) + _audit(inputs)
    lines.append("<sub>Written by `mlci report model-card` from the MLflow registry.</sub>")
    return "\n".join(lines).rstrip() + "\n"


def fit_description(card: str, limit: int = DESCRIPTION_LIMIT, where: str = "") -> str:
    """The card as a registry description: whole when it fits, else cut at a section boundary."""
    if len(card) <= limit:
        return card
    tail = f"\n\n_Card shortened to fit the registry; the full card is model-card.md{where}._\n"
    budget = limit - len(tail)
    cut = card.rfind("\n## ", 0, budget)
    return card[: cut if cut > 0 else budget].rstrip() + tail
