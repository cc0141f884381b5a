"""Build the pipeline GitLab would see: includes, inputs, merging, `!reference`, `extends`, `default:`.

Each step keeps the file:line of every value, so a rule that fires on the
merged pipeline still points at the line a person has to change.
"""

from __future__ import annotations

import copy
import glob
from collections.abc import Iterator
from pathlib import Path

from mlci.errors import ConfigError
from mlci.lint.findings import Finding
from mlci.lint.inputs import InputContext
from mlci.lint.source import KEY, Document, Location, Reference, deepest_mark, parse_source

TYPE_CHECKING = False  # typing stays unimported on lint's path (see mlci.lint.source)
if TYPE_CHECKING:
    from typing import Any

GLOBAL_KEYWORDS = {"default", "include", "stages", "variables", "workflow", "spec"}
DEPRECATED_GLOBALS = {"image", "services", "cache", "before_script", "after_script"}
DEFAULT_KEYS = (
    "after_script", "artifacts", "before_script", "cache", "hooks", "id_tokens", "image", "interruptible",
    "retry", "services", "tags", "timeout",
)
MAX_INCLUDES = 150
MAX_EXTENDS_DEPTH = 11


class Pipeline:
    """The merged configuration, the location of every value, and what could not be resolved."""

    def __init__(self, data: dict[str, Any], origins: dict[tuple, Location], main_file: str, *,
                 files: list[str], unresolved_includes: list[tuple[dict, Location]], header: Document | None,
                 findings: list[Finding]) -> None:
        self.data = data
        self.origins = origins
        self.main_file = main_file
        self.files = files
        self.unresolved_includes = unresolved_includes  # project/remote/component
        self.header = header
        self.findings = findings
        self.jobs: dict[str, dict] = {}  # visible jobs after extends and default
        self.job_origins: dict[str, dict[tuple, Location]] = {}  # job -> path in job -> location

    def where(self, path: tuple) -> Location:
        return deepest_mark(self.origins, path) or self.origins.get((), Location(self.main_file, 1, 1))

    def where_key(self, path: tuple) -> Location:
        """Where the key at the end of `path` was written (a value's own line may differ)."""
        return self.origins.get((*path, KEY)) or self.where(path)

    def job_where(self, job: str, path: tuple = ()) -> Location:
        """Where a value of an expanded job was written (its own line, an extended parent's, or default's)."""
        return deepest_mark(self.job_origins.get(job, {}), path) or self.where((job,))

    def job_names(self) -> list[str]:
        return [name for name in self.data if is_job_key(name, self.data[name]) and not str(name).startswith(".")]


def is_job_key(name: Any, value: Any) -> bool:
    return isinstance(name, str) and name not in GLOBAL_KEYWORDS | DEPRECATED_GLOBALS and isinstance(value, dict)


# -- merging ---------------------------------------------------------------------------------------

def _drop_under(origins: dict[tuple, Location], prefix: tuple) -> None:
    for key in [k for k in origins if k[: len(prefix)] == prefix]:
        del origins[key]


def _copy_under(target: dict[tuple, Location], source: dict[tuple, Location], src_prefix: tuple,
                dst_prefix: tuple) -> None:
    for key, location in source.items():
        if key[: len(src_prefix)] == src_prefix:
            target[dst_prefix + key[len(src_prefix):]] = location


def deep_merge(base: dict, base_origins: dict, overlay: dict, overlay_origins: dict, prefix: tuple = (),
               overlay_prefix: tuple = ()) -> None:
    """GitLab's merge: mappings merge key by key, everything else is replaced by the overlay."""
    for key, value in overlay.items():
        here, there = (*prefix, key), (*overlay_prefix, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            if there in overlay_origins:
                base_origins.setdefault(here, overlay_origins[there])
            deep_merge(base[key], base_origins, value, overlay_origins, here, there)
        else:
            base[key] = copy.deepcopy(value)
            _drop_under(base_origins, here)
            _copy_under(base_origins, overlay_origins, there, here)


# -- includes --------------------------------------------------------------------------------------

def _include_entries(raw: Any, doc: Document) -> list[tuple[dict, Location]]:
    """Normalise every form of `include:` to (mapping, location) pairs."""
    items = raw if isinstance(raw, list) else [raw]
    entries = []
    for index, item in enumerate(items):
        where = doc.where(("include", index) if isinstance(raw, list) else ("include",))
        if isinstance(item, str):
            kind = "remote" if item.startswith(("http://", "https://")) else "local"
            entries.append(({kind: item}, where))
        elif isinstance(item, dict):
            entries.append((item, where))
        else:
            entries.append(({"invalid": item}, where))
    return entries


class _Resolver:
    def __init__(self, root: Path, main_display: str):
        self.root = root
        self.main_display = main_display
        self.findings: list[Finding] = []
        self.unresolved: list[tuple[dict, Location]] = []
        self.files: list[str] = []
        self.seen: set[tuple[str, str]] = set()
        self.count = 0

    def display(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def load(self, path: Path, display: str, given: dict, given_at: Location, stack: tuple[str, ...]
             ) -> tuple[dict, dict, Document | None]:
        """One file with its own includes merged underneath it: (data, origins, header)."""
        from mlci.config.yamlload import PIPELINE_LIMITS, read_text

        text = read_text(path, limits=PIPELINE_LIMITS, display_path=display)
        source = parse_source(text, display)
        spec = None
        if source.header is not None:
            spec_section = source.header.data.get("spec") if isinstance(source.header.data, dict) else None
            spec = (spec_section or {}).get("inputs") or {} if isinstance(spec_section, dict) else {}
        context = InputContext(display, spec, dict(given or {}), given_at, header=source.header)
        context.resolve()
        body = source.body(context.interpolate)
        self.findings.extend(context.findings)
        for key, location in source.duplicates:
            self.findings.append(Finding.make("duplicate-key", f"key '{key}' appears more than once", location))
        self.files.append(display)
        data = body.data if body.data is not None else {}
        if not isinstance(data, dict):
            raise ConfigError("the configuration must be a mapping of jobs and keywords", location=str(body.where(())))
        origins = {k: v for k, v in body.marks.items()}
        merged: dict = {}
        merged_origins: dict = {(): origins.get((), Location(display, 1, 1))}
        if "include" in data:
            for entry, where in _include_entries(data["include"], body):
                for sub_data, sub_origins in self.include(entry, where, (*stack, display)):
                    deep_merge(merged, merged_origins, sub_data, sub_origins)
        deep_merge(merged, merged_origins, data, origins)
        return merged, merged_origins, source.header

    def include(self, entry: dict, where: Location, stack: tuple[str, ...]):
        given = entry.get("inputs") or {}
        if not isinstance(given, dict):
            self.findings.append(Finding.make("include", "include:inputs must be a mapping", where))
            given = {}
        if "local" in entry:
            pattern = str(entry["local"]).lstrip("/")
            if any(ch in pattern for ch in "*?["):
                matches = sorted(Path(p) for p in glob.glob(str(self.root / pattern), recursive=True))
                matches = [m for m in matches if m.suffix in (".yml", ".yaml")]
            else:
                matches = [self.root / pattern]
            if not matches or not matches[0].exists():
                self.findings.append(Finding.make("include", f"local include '{entry['local']}' does not exist "
                                                  f"(paths are relative to the repository root {self.root})", where))
                return
            for path in matches:
                display = self.display(path)
                key = (display, repr(sorted(given.items(), key=lambda kv: str(kv[0]))))
                if display in stack:
                    self.findings.append(Finding.make("include", f"'{display}' includes itself", where))
                    continue
                if key in self.seen:
                    continue  # GitLab includes one file with the same inputs only once
                self.seen.add(key)
                self.count += 1
                if self.count > MAX_INCLUDES:
                    self.findings.append(Finding.make("include", f"more than {MAX_INCLUDES} includes", where))
                    return
                try:
                    data, origins, _ = self.load(path, display, given, where, stack)
                except ConfigError as exc:
                    self.findings.append(Finding.make("include", f"cannot load '{display}': {exc.message}", where))
                    continue
                yield data, origins
            return
        for kind in ("project", "remote", "template", "component"):
            if kind in entry:
                self.unresolved.append((entry, where))
                self.findings.append(Finding.make(
                    "include-not-checked", f"include {kind} '{entry[kind]}' is not fetched offline; "
                    "`mlci lint --server` lets GitLab check it", where))
                return
        self.findings.append(Finding.make("include", f"unsupported include entry {sorted(entry)}", where))


# -- !reference, extends, default ------------------------------------------------------------------

def _lookup(data: dict, target: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = data
    for part in target:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


# GitLab flattens nested arrays in these keywords: `Entry::Commands` (scripts, at most 10 levels) and the
# composable arrays (rules, needs, services, cache) do `[config].flatten`; stages allow 10 levels; the schema
# accepts nested tags. That is what makes `rules: [!reference [.mr-rules, rules], {if: ...}]` valid.
JOB_LIST_KEYS = {"script": 10, "before_script": 10, "after_script": 10, "rules": None, "needs": None,
                 "services": None, "cache": None, "tags": None}
GLOBAL_LIST_KEYS = {"stages": 10, "before_script": 10, "after_script": 10, "services": None, "cache": None}
MAX_REFERENCE_DEPTH = 10


def _leaves(value: list, path: tuple, depth: int = 1) -> Iterator[tuple[tuple, Any, int]]:
    """(original path, value, nesting depth) of each item of a nested list, in order."""
    for index, item in enumerate(value):
        if isinstance(item, list):
            yield from _leaves(item, (*path, index), depth + 1)
        else:
            yield (*path, index), item, depth


def _flatten_at(container: dict, key: str, path: tuple, origins: dict, max_depth: int | None,
                findings: list[Finding]) -> None:
    value = container.get(key)
    if not isinstance(value, list) or not any(isinstance(item, list) for item in value):
        return
    here = (*path, key)
    leaves = list(_leaves(value, here))
    deepest = max(depth for _, _, depth in leaves) if leaves else 1
    if max_depth is not None and deepest > max_depth:
        findings.append(Finding.make(
            "schema", f"{'.'.join(map(str, here))}: nested more than {max_depth} levels deep (GitLab flattens "
            f"nested arrays up to {max_depth} levels)", deepest_mark(origins, here) or origins[()]))
    saved = {k: v for k, v in origins.items() if k[: len(here)] == here and len(k) > len(here)}
    for old in saved:
        del origins[old]
    container[key] = [item for _, item, _ in leaves]
    for new_index, (old_path, _, _) in enumerate(leaves):
        _copy_under(origins, saved, old_path, (*here, new_index))


def flatten_lists(data: dict, origins: dict, findings: list[Finding]) -> None:
    """Flatten the nested lists GitLab flattens, moving each item's location with it."""
    for key, limit in GLOBAL_LIST_KEYS.items():
        _flatten_at(data, key, (), origins, limit, findings)
    workflow = data.get("workflow")
    if isinstance(workflow, dict):
        _flatten_at(workflow, "rules", ("workflow",), origins, None, findings)
    for name, job in data.items():
        if not isinstance(job, dict) or name in GLOBAL_KEYWORDS - {"default"}:
            continue
        for key, limit in JOB_LIST_KEYS.items():
            _flatten_at(job, key, (name,), origins, limit, findings)
        hooks = job.get("hooks")
        if isinstance(hooks, dict):
            _flatten_at(hooks, "pre_get_sources_script", (name, "hooks"), origins, 10, findings)
        for index, rule in enumerate(job.get("rules") or []):
            if isinstance(rule, dict):
                _flatten_at(rule, "needs", (name, "rules", index), origins, None, findings)


def resolve_references(pipeline: Pipeline) -> None:
    """Replace every `!reference` by a copy of what it points at; its values keep the lines they were written on."""
    findings = pipeline.findings
    origins = pipeline.origins
    source_origins = dict(origins)

    def resolve(value: Any, path: tuple, depth: int) -> Any:
        if isinstance(value, Reference):
            found, target = _lookup(pipeline.data, value.target)
            if not found:
                findings.append(Finding.make("extends", f"!reference {list(value.target)} points at nothing",
                                             value.location))
                return None
            if depth >= MAX_REFERENCE_DEPTH:
                findings.append(Finding.make("extends", f"!reference nested more than {MAX_REFERENCE_DEPTH} levels",
                                             value.location))
                return None
            _drop_under(origins, path)
            _copy_under(origins, source_origins, tuple(value.target), path)
            origins[path] = value.location
            return resolve(copy.deepcopy(target), path, depth + 1)
        if isinstance(value, dict):
            return {k: resolve(v, (*path, k), depth) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, (*path, i), depth) for i, v in enumerate(value)]
        return value

    pipeline.data = resolve(pipeline.data, (), 0)
    flatten_lists(pipeline.data, origins, findings)


def _expand_job(pipeline: Pipeline, name: str, chain: tuple[str, ...], cache: dict) -> tuple[dict, dict]:
    if name in cache:
        return cache[name]
    job = pipeline.data[name]
    parents = job.get("extends") or []
    parents = [parents] if isinstance(parents, str) else parents
    result: dict = {}
    origins: dict = {}
    for parent in parents:
        where = pipeline.where((name, "extends"))
        if not isinstance(parent, str) or parent not in pipeline.data or not isinstance(pipeline.data[parent], dict):
            pipeline.findings.append(Finding.make("extends", f"job '{name}' extends '{parent}', which does not exist",
                                                  where, job=name))
            continue
        if parent in chain:
            pipeline.findings.append(Finding.make("extends", f"circular extends: {' -> '.join((*chain, parent))}",
                                                  where, job=name))
            continue
        if len(chain) >= MAX_EXTENDS_DEPTH:
            pipeline.findings.append(Finding.make("extends", f"extends nested deeper than {MAX_EXTENDS_DEPTH}",
                                                  where, job=name))
            continue
        parent_data, parent_origins = _expand_job(pipeline, parent, (*chain, parent), cache)
        deep_merge(result, origins, parent_data, parent_origins)
    own = {k: v for k, v in job.items() if k != "extends"}
    own_origins: dict = {}
    _copy_under(own_origins, pipeline.origins, (name,), ())
    deep_merge(result, origins, own, own_origins)
    cache[name] = (result, origins)
    return result, origins


def expand_jobs(pipeline: Pipeline) -> None:
    """Every visible job with `extends` and `default:` applied; origins re-rooted at the job."""
    cache: dict = {}
    defaults = dict(pipeline.data.get("default") or {}) if isinstance(pipeline.data.get("default"), dict) else {}
    for key in DEPRECATED_GLOBALS:
        if key in pipeline.data and key not in defaults:
            defaults[key] = pipeline.data[key]
    for name in pipeline.job_names():
        job, origins = _expand_job(pipeline, name, (name,), cache)
        job = copy.deepcopy(job)
        inherit = (job.get("inherit") or {}).get("default", True) if isinstance(job.get("inherit"), dict) else True
        for key in DEFAULT_KEYS:
            allowed = inherit is True or (isinstance(inherit, list) and key in inherit)
            if key not in job and key in defaults and allowed:
                job[key] = copy.deepcopy(defaults[key])
                source = ("default", key) if key in (pipeline.data.get("default") or {}) else (key,)
                _copy_under(origins, pipeline.origins, source, (key,))
        for path, location in origins.items():
            pipeline.origins.setdefault((name, *path), location)
        pipeline.jobs[name] = job
        pipeline.job_origins[name] = origins


def load_pipeline(path: Path, *, root: Path | None = None, inputs: dict | None = None) -> Pipeline:
    """The merged pipeline of `path` (raises ConfigError when `path` itself cannot be read or parsed)."""
    root = root or path.parent
    resolver = _Resolver(root, str(path))
    display = resolver.display(path) if path.resolve().is_relative_to(root.resolve()) else str(path)
    given_at = Location(display, 1, 1)
    data, origins, header = resolver.load(path, display, inputs or {}, given_at, ())
    pipeline = Pipeline(data=data, origins=origins, main_file=display, files=resolver.files,
                        unresolved_includes=resolver.unresolved, header=header, findings=list(resolver.findings))
    resolve_references(pipeline)
    expand_jobs(pipeline)
    return pipeline
