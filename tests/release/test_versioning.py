"""Version stamps and the release script: one version in the package, templates, README and release notes."""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.release.conftest import REPO, run_release_script

spec = importlib.util.spec_from_file_location("release_script", REPO / "scripts" / "release.py")
release = importlib.util.module_from_spec(spec)
spec.loader.exec_module(release)


def generate_check(repo: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "HOME": str(repo)}
    return subprocess.run([sys.executable, "-m", "mlci", "generate", "--check", "--catalog", "."], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=300)


CHANGELOG = """# Changelog

## [Unreleased]

### Added
- a faster data check

## [1.0.0] - 2026-01-02

- first
"""


def test_notes_are_the_versions_section_without_its_heading():
    assert release.notes("1.0.0", CHANGELOG) == "- first\n"
    with pytest.raises(release.ReleaseError, match=r"no '## \[2\.0\.0\]' section"):
        release.notes("2.0.0", CHANGELOG)


def test_a_release_moves_the_unreleased_entries_under_a_dated_heading():
    text = release.changelog_with_release(CHANGELOG, "1.1.0", dt.date(2026, 3, 4))
    assert "## [Unreleased]\n\n## [1.1.0] - 2026-03-04\n\n### Added\n- a faster data check\n\n## [1.0.0]" in text
    assert release.notes("1.1.0", text) == "### Added\n- a faster data check\n"
    with pytest.raises(release.ReleaseError, match="nothing under Unreleased"):
        release.changelog_with_release(text, "1.2.0", dt.date(2026, 3, 5))
    with pytest.raises(release.ReleaseError, match="already has a section"):
        release.changelog_with_release(CHANGELOG, "1.0.0", dt.date(2026, 3, 5))


@pytest.mark.parametrize("tag", ["v1.2.3", "1.2", "01.2.3", "1.2.3-rc.1", "1.2.3 ", ""])
def test_only_plain_semver_tags_are_releases(tag):
    with pytest.raises(release.ReleaseError, match="not a release version"):
        release.check_semver(tag)


def test_the_readme_version_stamps_follow_the_package_version():
    from mlci.generate.readme import with_version_stamps

    text = ("  - component: $CI_SERVER_FQDN/<group>/mlci/all@0.1.0\n    inputs: {install-spec: mlci==0.1.0}\n"
            "  - {project: <group>/mlci, ref: 0.1.0, file: ci_templates/mlci-all.yml}\n"
            "image: $CI_REGISTRY/<group>/mlci:0.1.0\npip install 'mlci[data]==0.1.0'\n"
            "gitlab-ci-local 4.73.0, mlflow==3.17.2, notmlci==0.1.0\n")
    stamped = with_version_stamps(text, "2.3.4")
    assert stamped.count("2.3.4") == 5
    assert "gitlab-ci-local 4.73.0, mlflow==3.17.2, notmlci==0.1.0" in stamped


@pytest.mark.slow
def test_bump_stamps_every_file_and_generate_check_catches_a_version_set_by_hand(release_tree):
    from mlci import __version__

    assert generate_check(release_tree).returncode == 0
    # A version changed by hand leaves the templates and the README behind: --check says so.
    init = release_tree / "mlci" / "__init__.py"
    init.write_text(init.read_text().replace(__version__, "9.8.7"))
    lagging = generate_check(release_tree)
    assert lagging.returncode == 1
    assert "ci_templates/mlci-data.yml" in lagging.stdout + lagging.stderr
    assert "README.md" in lagging.stdout + lagging.stderr
    init.write_text(init.read_text().replace("9.8.7", __version__))

    done = run_release_script(release_tree, "bump", "9.8.7")
    assert done.returncode == 0, done.stderr
    assert generate_check(release_tree).returncode == 0
    assert '__version__ = "9.8.7"' in init.read_text()
    assert "MLCI_VERSION: 9.8.7" in (release_tree / "ci_templates" / "mlci-data.yml").read_text()
    assert "MLCI_VERSION: 9.8.7" in (release_tree / "templates" / "data.yml").read_text()
    # the light jobs' default image is the release image of that same version
    assert "default: ${CI_REGISTRY}/mlci/mlci:9.8.7" in (release_tree / "templates" / "data.yml").read_text()
    assert "mlci/all@9.8.7" in (release_tree / "README.md").read_text()
    assert __version__ not in (release_tree / "tests/golden/templates/gate-after-sweep.yml").read_text()
    assert "## [9.8.7] - " in (release_tree / "CHANGELOG.md").read_text()
    assert run_release_script(release_tree, "check", "9.8.7").returncode == 0
    wrong = run_release_script(release_tree, "check", "9.8.8")
    assert wrong.returncode == 1 and "mlci/__init__.py says 9.8.7" in wrong.stderr
