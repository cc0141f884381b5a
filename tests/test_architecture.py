"""docs/ARCHITECTURE.md names modules that exist, and the layers import downwards only."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mlci"


def _layout_block() -> list[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    match = re.search(r"## Layout\s+```\n(.*?)```", text, re.S)
    assert match, "docs/ARCHITECTURE.md has a Layout code block"
    return match.group(1).splitlines()


def named_modules() -> list[Path]:
    """Every file or folder the Layout block names, as a path under the repository."""
    named: list[Path] = []
    folder: Path | None = None
    for line in _layout_block()[1:]:  # the first line is `mlci/` itself
        if not line.strip():
            continue
        head, _, rest = line.strip().partition(" ")
        indented_continuation = line.startswith(" " * 8) and not re.match(r"\s*[\w<>]+(/|\.py)", line[:24])
        if not indented_continuation:
            path = PACKAGE / head.replace("<name>", "deploy")
            named.append(path)
            folder = path if head.endswith("/") else None
            words = rest
        else:
            words = line
        if folder is not None:
            named.extend(folder / name for name in re.findall(r"\b([a-z_]+\.py)\b", words))
    return named


def test_every_module_the_architecture_page_names_exists():
    named = named_modules()
    assert len(named) > 20, named
    missing = [str(path.relative_to(ROOT)) for path in named if not path.exists()]
    assert missing == [], f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"


def test_every_top_level_module_and_package_is_on_the_page():
    named = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in named_modules()
             if path.parent == PACKAGE or path.parent.parent == PACKAGE}
    actual = {path.stem if path.suffix == ".py" else path.name for path in PACKAGE.iterdir()
              if (path.suffix == ".py" or (path / "__init__.py").exists()) and not path.name.startswith("__")}
    assert sorted(actual - named) == [], "add these to the Layout block of docs/ARCHITECTURE.md"


def test_the_page_names_a_missing_module_when_there_is_one(tmp_path, monkeypatch):
    """The check above can fail: a made-up name in the block is caught."""
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    fake = tmp_path / "docs" / "ARCHITECTURE.md"
    fake.parent.mkdir()
    fake.write_text(page.replace("redact.py  ", "nowhere.py ", 1), encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert "nowhere.py" in [p.name for p in named_modules()]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_domain_package_imports_the_command_layer():
    climbing = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "commands" or relative.name in ("cli.py", "__main__.py"):
            continue
        if any(name == "mlci.commands" or name.startswith("mlci.commands.") for name in _imports(path)):
            climbing.append(str(relative))
    assert climbing == [], f"modules importing mlci.commands (move the shared code down instead): {climbing}"
