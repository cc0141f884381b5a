"""mlci.yml as part of `mlci lint`: its schema, and whether it fits the pipeline that includes the templates.

Which templates a pipeline runs and which mlci.yml settings each one needs is
one table, STAGES. A new template adds a row: its name (ci_templates/mlci-
<name>.yml, catalog component <name>), the mlci.yml sections its jobs read,
and the settings its jobs fail without (each may be supplied by an include
input instead).

Two cross-checks follow from the table:
- a template is included but a setting it needs is in neither mlci.yml nor
  the include's inputs (error, at the include);
- mlci.yml configures a section that no included template reads (warning, at
  the section), e.g. `deploy:` in a project that never includes mlci-deploy.
"""

from __future__ import annotations

import re
from collections import namedtuple
from pathlib import Path

from mlci.errors import ConfigError
from mlci.lint.findings import Finding
from mlci.lint.source import Location

TYPE_CHECKING = False  # typing stays unimported on lint's path (see mlci.lint.source)
if TYPE_CHECKING:
    from typing import Any


# A setting (a key path) a stage's jobs fail without, unless the include input `unless_input` supplies it.
Need = namedtuple("Need", "setting why unless_input severity", defaults=(None, "error"))


class Stage(namedtuple("Stage", "name sections needs job_prefixes", defaults=((), ()))):
    """A template's stage; `job_prefixes` (default `mlci-NAME`) find a job's MLCI_CONFIG."""

    __slots__ = ()

    def prefixes(self) -> tuple[str, ...]:
        return self.job_prefixes or (f"mlci-{self.name}",)


STAGES: tuple[Stage, ...] = (
    Stage("data", sections=("data",), needs=(
        Need(("data", "sources"), "`mlci data check` checks the files under data.sources", unless_input="paths"),
    )),
    Stage("train", sections=("train",), needs=(
        Need(("train", "command"), "`mlci train` runs train.command", unless_input="command"),
    )),
    Stage("gate", sections=("gate",), needs=(
        Need(("gate", "rules"), "without gate.rules the gate checks nothing and every model passes",
             severity="warning"),
    )),
    Stage("report", sections=("report",)),
    Stage("deploy", sections=("deploy",), job_prefixes=("mlci-deploy", "mlci-smoke-test", "mlci-rollback")),
    Stage("retrain", sections=("retrain", "schedules", "train", "data", "gate", "deploy"), needs=(
        Need(("train", "command"), "the retraining child pipeline runs train.command", unless_input="train-command"),
    )),
)
# Sections every command reads: never "unused".
SHARED_SECTIONS = {"version", "project", "model", "mlflow", "gitlab"}
ALL_STAGES_TEMPLATE = "all"

_LOCAL_TEMPLATE = re.compile(r"(?:^|/)mlci-(?P<name>[a-z0-9-]+)\.ya?ml$")
_COMPONENT = re.compile(r"/(?P<name>[a-z0-9-]+)@[^/]+$")


# A stage's template as the pipeline includes it, with the include's inputs.
Included = namedtuple("Included", "stage inputs where")


def included_stages(pipeline) -> list[Included]:
    """The mlci templates the pipeline includes (local files or catalog components), with their inputs."""
    from mlci.lint.resolve import _include_entries

    raw = pipeline.data.get("include")
    if raw is None:
        return []
    by_name = {stage.name: stage for stage in STAGES}
    found: dict[str, Included] = {}
    for entry, where in _include_entries(raw, pipeline):
        if not isinstance(entry, dict):
            continue
        name = None
        if isinstance(entry.get("local"), str):
            match = _LOCAL_TEMPLATE.search(entry["local"])
            name = match["name"] if match else None
        elif isinstance(entry.get("component"), str):
            match = _COMPONENT.search(entry["component"])
            name = match["name"] if match else None
        inputs = entry.get("inputs") if isinstance(entry.get("inputs"), dict) else {}
        names = list(by_name) if name == ALL_STAGES_TEMPLATE else [name] if name in by_name else []
        for stage_name in names:
            found.setdefault(stage_name, Included(by_name[stage_name], dict(inputs), where))
    return list(found.values())


def _job_config_path(pipeline, stage: Stage) -> str | None:
    """MLCI_CONFIG as the pipeline sets it for the stage's jobs (job variables, then global ones)."""
    for name, job in pipeline.jobs.items():
        if not name.startswith(stage.prefixes()):
            continue
        variables = job.get("variables")
        if isinstance(variables, dict) and isinstance(variables.get("MLCI_CONFIG"), (str, dict)):
            value = variables["MLCI_CONFIG"]
            return value.get("value") if isinstance(value, dict) else value
    return None


def _location(text: str | None, fallback: str) -> Location:
    if not text:
        return Location(fallback, 1, 1)
    parts = text.rsplit(":", 2)
    try:
        return Location(parts[0], int(parts[1]), int(parts[2]))
    except (IndexError, ValueError):
        try:
            return Location(text.rsplit(":", 1)[0], int(text.rsplit(":", 1)[1]), 1)
        except (IndexError, ValueError):
            return Location(text, 1, 1)


def _schema_findings(doc) -> list[Finding]:
    from mlci.config.schema import validate_document

    findings = []
    for problem in validate_document(doc):
        message = problem.detail + (f" ({problem.hint})" if problem.hint else "")
        findings.append(Finding.make("mlci-config", message, _location(problem.location, doc.path)))
    return findings


def _load(path: Path, display: str):
    """(document or None, findings): mlci.yml parsed with locations and checked against its schema."""
    from mlci.config.yamlmarks import load_located

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Finding.make("mlci-config", f"cannot read {display}: {exc}", Location(display, 1, 1))]
    try:
        doc = load_located(text, display)
    except ConfigError as exc:
        return None, [Finding.make("mlci-config", exc.detail, _location(exc.location, display))]
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        return None, [Finding.make("mlci-config", "the top level must be a mapping of sections",
                                   _location(doc.where(()), display))]
    if _known_valid(text):
        return doc, []
    findings = _schema_findings(doc)
    if not findings:
        _remember_valid(text)
    return doc, findings


def _validity_marker(text: str) -> Path:
    """A cache file that exists once this exact mlci.yml passed this exact schema (skips importing jsonschema)."""
    import zlib

    from mlci import __version__
    from mlci.config import schema as config_schema
    from mlci.lint.schema import cache_dir

    schemas = "".join(sorted(str(doc) for doc in config_schema._schema_files().values()))
    key = "\0".join([text, schemas, __version__])
    return cache_dir() / "config-ok" / f"{zlib.crc32(key.encode('utf-8')):08x}-{len(key):x}"


def _known_valid(text: str) -> bool:
    try:
        return _validity_marker(text).is_file()
    except OSError:
        return False


def _remember_valid(text: str) -> None:
    try:
        marker = _validity_marker(text)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass


def _get(data: dict, path: tuple[str, ...]) -> Any:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _display(path: Path, root: Path) -> str:
    """Relative to the repository root, like the CI files' names."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def default_config(ci_file: Path, root: Path) -> Path:
    """mlci.yml beside the CI file (jobs run there), else at the repository root."""
    beside = ci_file.parent / "mlci.yml"
    return beside if beside.is_file() else root / "mlci.yml"


def check(pipeline, root: Path, config: Path | None = None, ci_file: Path | None = None) -> list[Finding]:
    """Findings about mlci.yml: its schema, and how it fits the included mlci templates.

    `config` is the file given with --config/MLCI_CONFIG; by default mlci.yml beside the CI file or at the
    repository root. A stage whose jobs set MLCI_CONFIG in the pipeline is checked against that file instead.
    """
    main = config if config is not None else default_config(ci_file or root / ".gitlab-ci.yml", root)
    stages = included_stages(pipeline)
    if not stages and not main.is_file():
        return []
    findings: list[Finding] = []
    loaded: dict[Path, Any] = {}

    def document(path: Path):
        key = path.resolve()
        if key not in loaded:
            doc = None
            if path.is_file():
                doc, problems = _load(path, _display(path, root))
                findings.extend(problems)
            loaded[key] = doc
        return loaded[key]

    main_doc = document(main)
    for included in stages:
        job_config = _job_config_path(pipeline, included.stage)
        path = (root / job_config) if job_config and "$" not in job_config else main
        doc = document(path) if path != main else main_doc
        data = doc.data if doc is not None else {}
        for need in included.stage.needs:
            if _get(data, need.setting) not in (None, "", [], {}):
                continue
            if need.unless_input and included.inputs.get(need.unless_input) not in (None, "", []):
                continue
            setting = ".".join(need.setting)
            where = _display(path, root) if path.is_file() else f"{_display(path, root)} (not found)"
            supply = f" or the include's `{need.unless_input}` input" if need.unless_input else ""
            findings.append(Finding.make(
                "mlci-config-missing",
                f"mlci-{included.stage.name} is included but {setting} is not set in {where}{supply}: {need.why}",
                included.where, severity=need.severity))
    if main_doc is not None and stages:
        read = set(SHARED_SECTIONS)
        for included in stages:
            read.update(included.stage.sections)
        running = ", ".join(f"mlci-{s.stage.name}" for s in stages)
        for section in main_doc.data:
            if section in read or not any(section in stage.sections for stage in STAGES):
                continue
            readers = ", ".join(f"mlci-{s.name}" for s in STAGES if section in s.sections)
            findings.append(Finding.make(
                "mlci-config-unused",
                f"mlci.yml configures `{section}`, read by {readers}, which the pipeline does not include "
                f"(it includes {running})", _location(main_doc.where((section,), key=True), main_doc.path)))
    return findings
