"""Versions and releases of mlci: bump the version everywhere, check a release tag, print its notes.

    python scripts/release.py bump 1.4.0     # mlci/__init__.py, CHANGELOG, templates, README, goldens
    python scripts/release.py check 1.4.0    # the release pipeline: tag == stamped version, notes exist
    python scripts/release.py notes 1.4.0    # the CHANGELOG section, the release description

A release is a SemVer tag MAJOR.MINOR.PATCH (the CI/CD catalog wants SemVer; the
same string is a valid PEP 440 version, so package, image and catalog share it).
`mlci generate --check` fails while a stamp (templates, README) lags behind
mlci/__init__.py, so a bump that skipped a file cannot be tagged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INIT = ROOT / "mlci" / "__init__.py"
CHANGELOG = ROOT / "CHANGELOG.md"
GOLDEN = ROOT / "tests" / "golden" / "templates"
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
UNRELEASED = "## [Unreleased]"


class ReleaseError(Exception):
    pass


def current_version() -> str:
    match = re.search(r'^__version__ = "([^"]+)"$', INIT.read_text(), re.MULTILINE)
    if not match:
        raise ReleaseError(f"{INIT}: no __version__ line")
    return match[1]


def check_semver(version: str) -> str:
    if not SEMVER.fullmatch(version):
        raise ReleaseError(f"{version!r} is not a release version: use MAJOR.MINOR.PATCH, e.g. 1.4.0 (no 'v')")
    return version


def _section_bounds(text: str, heading: str) -> tuple[int, int] | None:
    start = text.find(heading)
    if start < 0:
        return None
    body = text.index("\n", start) + 1 if "\n" in text[start:] else len(text)
    following = re.search(r"^## \[", text[body:], re.MULTILINE)
    return body, body + following.start() if following else len(text)


def notes(version: str, changelog: str | None = None) -> str:
    """The CHANGELOG section of `version`, without its heading."""
    text = CHANGELOG.read_text() if changelog is None else changelog
    bounds = _section_bounds(text, f"## [{version}]")
    if bounds is None:
        raise ReleaseError(f"CHANGELOG.md has no '## [{version}]' section")
    section = text[bounds[0]:bounds[1]].strip()
    if not section:
        raise ReleaseError(f"CHANGELOG.md: the '## [{version}]' section is empty")
    return section + "\n"


def check(tag: str) -> None:
    check_semver(tag)
    stamped = current_version()
    if tag != stamped:
        raise ReleaseError(f"tag {tag} but mlci/__init__.py says {stamped}: run `python scripts/release.py bump {tag}`"
                           " and tag that commit")
    notes(tag)


def changelog_with_release(text: str, version: str, today: dt.date) -> str:
    """Move the Unreleased entries under a new '## [version] - date' heading; keep an empty Unreleased."""
    if f"## [{version}]" in text:
        raise ReleaseError(f"CHANGELOG.md already has a section for {version}")
    bounds = _section_bounds(text, UNRELEASED)
    if bounds is None:
        raise ReleaseError(f"CHANGELOG.md has no '{UNRELEASED}' section")
    entries = text[bounds[0]:bounds[1]].strip()
    if not entries:
        raise ReleaseError("CHANGELOG.md: nothing under Unreleased to release")
    head = text[:bounds[0]]
    return f"{head}\n## [{version}] - {today.isoformat()}\n\n{entries}\n\n{text[bounds[1]:].lstrip()}"


def bump(version: str, *, today: dt.date | None = None) -> list[Path]:
    check_semver(version)
    old = current_version()
    # Releasing the version already stamped (a first release) only dates its CHANGELOG section.
    CHANGELOG.write_text(changelog_with_release(CHANGELOG.read_text(), version, today or dt.date.today()))
    changed = [CHANGELOG]
    if old == version:
        return changed
    INIT.write_text(INIT.read_text().replace(f'__version__ = "{old}"', f'__version__ = "{version}"'))
    changed.append(INIT)
    # Golden files hold the rendered templates, whose install step names the version.
    for golden in sorted(GOLDEN.glob("*.yml")):
        text = golden.read_text()
        updated = re.sub(rf"(MLCI_VERSION: ['\"]?){re.escape(old)}\b", rf"\g<1>{version}", text)
        if updated != text:
            golden.write_text(updated)
            changed.append(golden)
    # Templates, the catalog and every version stamp in the README come from `mlci generate`.
    subprocess.run([sys.executable, "-m", "mlci", "generate", "--catalog", "."], cwd=ROOT, check=True)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/release.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (("bump", "set a new version everywhere"), ("check", "check a release tag"),
                            ("notes", "print the release notes of a version")):
        sub.add_parser(name, help=help_text).add_argument("version")
    args = parser.parse_args(argv)
    try:
        if args.action == "bump":
            for path in bump(args.version):
                print(f"updated {path.relative_to(ROOT)}")
            print(f"mlci {args.version}: commit, then tag the commit {args.version} and push the tag")
        elif args.action == "check":
            check(args.version)
            print(f"release {args.version}: version stamps and CHANGELOG section in place")
        else:
            sys.stdout.write(notes(args.version))
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
