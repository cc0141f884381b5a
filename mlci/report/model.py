"""The report model: plain dataclasses that the renderers turn into markdown or HTML.

Nothing here knows about MLflow, GitLab or files. Builders in `mlci.report.build`
fill these from plain inputs; `markdown.py` and `html.py` only render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Verdicts of one metric comparison, worded so the meaning never relies on colour alone.
BETTER, WORSE, SAME, UNKNOWN = "better", "worse", "same", "n/a"


@dataclass(frozen=True)
class Link:
    text: str
    url: str = ""


@dataclass(frozen=True)
class RunRef:
    """A run the candidate is shown against (or the candidate itself)."""

    run_id: str
    url: str = ""
    name: str = ""
    version: str = ""  # registered model version, when the run backs one
    ref: str = ""  # git ref the run was trained on
    commit: str = ""


@dataclass(frozen=True)
class Header:
    model_name: str
    candidate: RunRef | None = None
    champion: RunRef | None = None
    target: RunRef | None = None
    target_branch: str = ""
    source_branch: str = ""
    mr_iid: str = ""
    pipeline: Link | None = None
    job: Link | None = None
    commit: Link | None = None
    model_version: str = ""  # version the gate registered for this candidate


@dataclass(frozen=True)
class Delta:
    absolute: float | None
    relative: float | None  # None when the base is 0 or a value is missing/NaN
    verdict: str  # BETTER | WORSE | SAME | UNKNOWN


@dataclass(frozen=True)
class MetricRow:
    name: str
    direction: str  # "higher" | "lower"
    candidate: float | None
    champion: float | None = None
    target: float | None = None
    vs_champion: Delta | None = None
    vs_target: Delta | None = None


@dataclass(frozen=True)
class ParamChange:
    name: str
    candidate: str | None
    champion: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    """A summary from an upstream job (gate, data check, drift, training telemetry)."""

    key: str  # "gate" | "data-check" | "drift" | "telemetry" | "tune" | "optimize"
    title: str
    status: str  # "passed" | "failed" | "warning" | "info"
    headline: str
    table: Table | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Image:
    name: str  # file name under report-plots/
    title: str
    kind: str  # "history" | "predictions" | "tune" | "drift"


@dataclass
class ReportModel:
    header: Header
    metrics: list[MetricRow] = field(default_factory=list)
    params: list[ParamChange] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out and why

    @property
    def has_champion(self) -> bool:
        return self.header.champion is not None

    @property
    def has_target(self) -> bool:
        return self.header.target is not None

    def failed_rules(self, key: str) -> list[str]:
        """Names (first column) of the failed rows of a section's table."""
        section = self.section(key)
        if section is None or section.table is None or "Result" not in section.table.columns:
            return []
        result = section.table.columns.index("Result")
        return [row[0] for row in section.table.rows if row[result] == "failed"]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)
