"""Template manifests: one YAML file per stage, the single source for each
rendered template's `spec:inputs` header, its input variables and the README
input tables.

A manifest is data written by people, so it is validated like mlci.yml:
against a JSON Schema, with every problem reported as file:line:col.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mlci.config.schema import validate_document
from mlci.config.yamlmarks import LocatedDocument, load_located
from mlci.errors import ConfigError, ConfigErrors

MANIFEST_PACKAGE = "mlci.generate.manifest"
VERSION_PLACEHOLDER = "{mlci-version}"
INPUT_TYPES = ("string", "number", "boolean", "array")
# The order templates appear in mlci-all.yml, the README and the catalog.
STAGE_ORDER = ("data", "train", "optimize", "gate", "report", "deploy", "retrain", "monitor", "runners")

_NAME = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_ONE_LINE = r"^[^\n\r]*$"

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "title", "description", "inputs", "jobs"],
    "properties": {
        "name": {"type": "string", "pattern": _NAME, "description": "Stage name: ci_templates/mlci-<name>.yml."},
        "title": {"type": "string", "minLength": 1, "maxLength": 80, "pattern": _ONE_LINE},
        "description": {
            "type": "string", "minLength": 1, "maxLength": 256,
            "description": "One paragraph; also the catalog's component description (GitLab allows 256 chars).",
        },
        "inputs": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["description"],
                "properties": {
                    "type": {"enum": list(INPUT_TYPES), "default": "string"},
                    "default": {"description": "Omit to make the input required."},
                    "description": {"type": "string", "minLength": 1, "maxLength": 1024},
                    "options": {
                        "type": "array", "minItems": 1, "maxItems": 50,
                        "items": {"type": ["string", "number", "boolean"]},
                    },
                    "regex": {"type": "string", "minLength": 1},
                    "variable": {
                        "description": "false: input only (GitLab fixes the keyword when it creates the pipeline); "
                        "a name: the job reads that variable directly (e.g. KUBERNETES_CPU_REQUEST); "
                        "absent: MLCI_<STAGE>_<INPUT> for string inputs, none for the others (GitLab "
                        "variables are strings, and a whole-value interpolation keeps the input's type).",
                        "oneOf": [
                            {"const": False},
                            {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
                        ],
                    },
                    "shared": {
                        "type": "boolean",
                        "description": "mlci-all.yml passes one shared input (same name) to every stage that has it.",
                    },
                },
            },
        },
        "jobs": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^mlci-[a-z0-9-]+$"},
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        "docs": {"type": "string", "description": "Markdown shown under the stage's heading in the README."},
    },
}


@dataclass(frozen=True)
class InputSpec:
    name: str
    description: str
    type: str = "string"
    default: Any = None
    has_default: bool = False
    options: tuple[Any, ...] = ()
    regex: str | None = None
    variable: str | None = None  # None: input only
    shared: bool = False

    @property
    def required(self) -> bool:
        return not self.has_default

    def spec(self) -> dict[str, Any]:
        """This input's entry under `spec:inputs:`."""
        entry: dict[str, Any] = {"type": self.type}
        if self.has_default:
            entry["default"] = self.default
        if self.options:
            entry["options"] = list(self.options)
        if self.regex:
            entry["regex"] = self.regex
        entry["description"] = self.description
        return entry


@dataclass(frozen=True)
class StageManifest:
    name: str
    title: str
    description: str
    inputs: dict[str, InputSpec]
    jobs: dict[str, str]
    docs: str = ""
    path: str = ""

    @property
    def filename(self) -> str:
        return f"mlci-{self.name}.yml"

    def variable_inputs(self) -> list[InputSpec]:
        return [spec for spec in self.inputs.values() if spec.variable]

    def input(self, name: str) -> InputSpec:
        try:
            return self.inputs[name]
        except KeyError:
            raise KeyError(f"{self.path}: template uses input '{name}', which the manifest does not declare") from None


def variable_name(stage: str, input_name: str) -> str:
    return f"MLCI_{stage.upper()}_{input_name.upper().replace('-', '_')}"


def _type_matches(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, list)


def _check_input(doc: LocatedDocument, name: str, raw: dict) -> list[ConfigError]:
    """What the JSON Schema cannot say: defaults and options must fit the declared type."""
    kind = raw.get("type", "string")
    here = ("inputs", name)
    problems = []
    if "default" in raw and raw["default"] is not None and not _type_matches(raw["default"], kind):
        problems.append(ConfigError(f"default does not match type '{kind}'", location=doc.where((*here, "default"))))
    if "default" in raw and raw["default"] is None:
        problems.append(ConfigError(
            "default must not be null; use an empty value of the input's type, or omit it to make the input required",
            location=doc.where((*here, "default")),
        ))
    for index, option in enumerate(raw.get("options", [])):
        if kind != "array" and not _type_matches(option, kind):
            problems.append(ConfigError(f"option does not match type '{kind}'",
                                        location=doc.where((*here, "options", index))))
    options = raw.get("options")
    if options and "default" in raw and kind != "array" and raw["default"] not in options:
        problems.append(ConfigError("default is not one of the options", location=doc.where((*here, "default"))))
    if kind != "string" and isinstance(raw.get("variable"), str):
        problems.append(ConfigError(
            f"a {kind} input cannot have a variable form: GitLab variables hold strings only",
            location=doc.where((*here, "variable")),
        ))
    if "regex" in raw:
        if kind != "string":
            problems.append(ConfigError("regex only applies to string inputs", location=doc.where((*here, "regex"))))
        try:
            pattern = re.compile(raw["regex"])
        except re.error as exc:
            problems.append(ConfigError(f"invalid regex: {exc}", location=doc.where((*here, "regex"))))
        else:
            if isinstance(raw.get("default"), str) and not pattern.search(raw["default"]):
                problems.append(ConfigError("default does not match regex", location=doc.where((*here, "default"))))
    return problems


def parse_manifest(text: str, display_path: str) -> StageManifest:
    doc = load_located(text, display_path)
    if not isinstance(doc.data, dict):
        raise ConfigError("a manifest must be a mapping", location=doc.where(()))
    problems = validate_document(doc, MANIFEST_SCHEMA)
    if problems:
        raise ConfigErrors(problems)
    data = doc.data
    for name, raw in data["inputs"].items():
        problems.extend(_check_input(doc, name, raw))
    if Path(display_path).stem != data["name"]:
        problems.append(ConfigError(f"name '{data['name']}' must match the file name", location=doc.where(("name",))))
    if problems:
        raise ConfigErrors(problems)
    inputs = {}
    for name, raw in data["inputs"].items():
        variable = raw.get("variable")
        if variable is None and raw.get("type", "string") != "string":
            variable = False
        inputs[name] = InputSpec(
            name=name,
            description=raw["description"].strip(),
            type=raw.get("type", "string"),
            default=_stamp_version(raw.get("default")),
            has_default="default" in raw,
            options=tuple(raw.get("options", ())),
            regex=raw.get("regex"),
            variable=None if variable is False else (variable or variable_name(data["name"], name)),
            shared=bool(raw.get("shared", False)),
        )
    return StageManifest(
        name=data["name"],
        title=data["title"],
        description=data["description"].strip(),
        inputs=inputs,
        jobs={job: text.strip() for job, text in data["jobs"].items()},
        docs=(data.get("docs") or "").strip(),
        path=display_path,
    )


def _stamp_version(default: Any) -> Any:
    """`{mlci-version}` in a default becomes this mlci's version, so a release re-renders its image tag."""
    if isinstance(default, str) and VERSION_PLACEHOLDER in default:
        from mlci import __version__

        return default.replace(VERSION_PLACEHOLDER, __version__)
    return default


@dataclass
class ManifestSet:
    stages: list[StageManifest] = field(default_factory=list)

    def by_name(self, name: str) -> StageManifest:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


def load_manifests(directory: Path | None = None) -> ManifestSet:
    """Every stage manifest, in pipeline order (stages not in STAGE_ORDER come last, by name)."""
    if directory is None:
        files = [
            (entry.name, entry.read_text(encoding="utf-8"), f"mlci/generate/manifest/{entry.name}")
            for entry in resources.files(MANIFEST_PACKAGE).iterdir()
            if entry.name.endswith(".yml")
        ]
    else:
        files = [(p.name, p.read_text(encoding="utf-8"), str(p)) for p in Path(directory).glob("*.yml")]
    manifests = [parse_manifest(text, shown) for _, text, shown in files]
    rank = {name: index for index, name in enumerate(STAGE_ORDER)}
    manifests.sort(key=lambda m: (rank.get(m.name, len(rank)), m.name))
    return ManifestSet(manifests)
