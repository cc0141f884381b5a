"""Template generation: stage manifests + Jinja2 bodies -> GitLab CI templates.

`plan()` computes every file `mlci generate` owns (rendered templates, the
catalog layout, README reference sections) without touching the disk;
`write()` and `differences()` act on that plan.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from mlci.generate.readme import MarkersMissing, catalog_readme, with_reference, with_version_stamps
from mlci.generate.render import LOCAL, Layout, RenderError, render_all, render_stage
from mlci.generate.stages import ManifestSet, load_manifests

__all__ = [
    "GeneratedFile",
    "MarkersMissing",
    "RenderError",
    "differences",
    "load_manifests",
    "plan",
    "render_templates",
    "write",
]


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    text: str


def render_templates(manifests: ManifestSet, layout: Layout = LOCAL) -> dict[str, str]:
    """file name -> content for every stage template and the all-in-one template."""
    files = {layout.filename(m.name): render_stage(m, layout) for m in manifests.stages}
    files[layout.filename("all")] = render_all(manifests, layout)
    return files


def plan(
    manifests: ManifestSet,
    *,
    out_dir: Path,
    readme: Path | None = None,
    catalog_dir: Path | None = None,
    catalog_project: str = "mlci/mlci",
) -> list[GeneratedFile]:
    from mlci import __version__

    files = [GeneratedFile(out_dir / name, text) for name, text in render_templates(manifests, LOCAL).items()]
    if readme is not None and readme.exists():
        text = with_version_stamps(readme.read_text(encoding="utf-8"), __version__)
        files.append(GeneratedFile(readme, with_reference(text, manifests, LOCAL)))
    if catalog_dir is not None:
        catalog = Layout("catalog", default_component_project=catalog_project)
        for name, text in render_templates(manifests, catalog).items():
            files.append(GeneratedFile(catalog_dir / "templates" / name, text))
        catalog_readme_path = catalog_dir / "README.md"
        if readme is not None and catalog_readme_path.resolve() == readme.resolve():
            pass  # one README serves both layouts; its reference shows the include:local file names
        elif catalog_readme_path.exists():
            current = catalog_readme_path.read_text(encoding="utf-8")
            files.append(GeneratedFile(catalog_readme_path, with_reference(current, manifests, catalog)))
        else:
            files.append(GeneratedFile(catalog_readme_path, catalog_readme(manifests, catalog)))
    return files


def write(files: list[GeneratedFile]) -> list[Path]:
    """Write the files whose content changed; returns those paths."""
    from mlci.outputs import atomic_write

    changed = []
    for item in files:
        current = item.path.read_text(encoding="utf-8") if item.path.exists() else None
        if current != item.text:
            atomic_write(item.path, item.text, redacted=False)
            changed.append(item.path)
    return changed


def differences(files: list[GeneratedFile], *, stale_dirs: list[tuple[Path, str]] = ()) -> list[tuple[Path, str]]:
    """(path, unified diff or reason) for every file that is not what `mlci generate` would write.

    `stale_dirs` lists (directory, glob) pairs that `mlci generate` owns entirely:
    files there that it would not write are reported too.
    """
    problems = []
    for item in files:
        if not item.path.exists():
            problems.append((item.path, "missing"))
            continue
        current = item.path.read_text(encoding="utf-8")
        if current != item.text:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True), item.text.splitlines(keepends=True),
                fromfile=f"{item.path} (committed)", tofile=f"{item.path} (fresh render)", n=2,
            )
            problems.append((item.path, "".join(diff)))
    expected = {item.path.resolve() for item in files}
    for directory, pattern in stale_dirs:
        for path in sorted(Path(directory).glob(pattern)):
            if path.resolve() not in expected:
                problems.append((path, "not produced by mlci generate (left over from a removed stage?)"))
    return problems
