"""The install step every template job runs (mlci/generate/install.py), run by a real shell.

Stand-ins for python, uv and mlci record the exact command lines they get, so
each mode is checked for what it would run on a runner. The real tools are
exercised against a loopback package index in test_index_install.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from mlci.generate.install import install_step

SHELLS = [shell for shell in ("sh", "bash") if shutil.which(shell)]
INDEX = "https://gitlab-ci-token:job-token@gitlab.example.com/api/v4/projects/mlci%2Fmlci/packages/pypi/simple"

RECORDER = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "$CALLS"
"""


def _tool(bin_dir: Path, name: str, body: str = "") -> None:
    path = bin_dir / name
    path.write_text(RECORDER + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def bench(tmp_path):
    """A PATH with recording stand-ins; `pip install uv` creates a uv stand-in unless told to fail."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "uv.new").write_text(RECORDER)
    _tool(bin_dir, "python", f"""
case "$*" in
  *"pip install --quiet uv")
    [ -n "$PIP_INSTALL_UV_FAILS" ] && exit 1
    cp {tmp_path / "uv.new"} "$(dirname "$0")/uv"; chmod +x "$(dirname "$0")/uv" ;;
esac
""")
    _tool(bin_dir, "mlci", 'echo "mlci 1.2.3"\n')

    def run(shell: str = "sh", *, with_uv: bool = False, **variables: str) -> tuple[int, list[str], str]:
        if with_uv:
            _tool(bin_dir, "uv")
        calls = tmp_path / "calls.txt"
        calls.write_text("")
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "MLCI_VERSION": "1.2.3",
               "MLCI_EXTRA": "data", **variables}
        done = subprocess.run([shell, "-c", install_step()], env=env, capture_output=True, text=True, cwd=tmp_path)
        lines = [line.replace(str(bin_dir) + "/", "") for line in calls.read_text().splitlines()]
        return done.returncode, lines, done.stdout + done.stderr

    return run


UV = "uv pip install --quiet --python python"
PIP = "python -m pip install --quiet"


@pytest.mark.parametrize("shell", SHELLS)
def test_auto_uses_uv_from_the_path_mlci_from_the_index_and_the_extra_from_the_default_index(bench, shell):
    code, calls, _ = bench(shell, with_uv=True, MLCI_INSTALL="auto", MLCI_INDEX_URL=INDEX)
    assert code == 0
    assert calls == [
        f"uv {UV.removeprefix('uv ')} --no-deps --index-url {INDEX} mlci==1.2.3",
        f"uv {UV.removeprefix('uv ')} mlci[data]==1.2.3",
        "mlci --version",
    ]


def test_auto_bootstraps_uv_with_pip_when_the_image_lacks_it(bench):
    code, calls, _ = bench(MLCI_INSTALL="auto", MLCI_INDEX_URL=INDEX)
    assert code == 0
    assert calls[0] == "python -m pip install --quiet uv"
    assert calls[1].startswith("uv pip install") and calls[2] == f"{UV} mlci[data]==1.2.3"


def test_auto_falls_back_to_pip_when_uv_cannot_be_installed(bench):
    code, calls, out = bench(MLCI_INSTALL="auto", MLCI_INDEX_URL=INDEX, PIP_INSTALL_UV_FAILS="1")
    assert code == 0, out
    assert calls == [
        "python -m pip install --quiet uv",
        f"{PIP} --no-deps --index-url {INDEX} mlci==1.2.3",
        f"{PIP} mlci[data]==1.2.3",
        "mlci --version",
    ]


def test_uv_mode_fails_when_uv_cannot_be_had(bench):
    code, calls, _ = bench(MLCI_INSTALL="uv", PIP_INSTALL_UV_FAILS="1")
    assert code == 1
    assert not any("mlci==" in call for call in calls)


def test_pip_mode_never_touches_uv(bench):
    code, calls, _ = bench(with_uv=True, MLCI_INSTALL="pip", MLCI_INDEX_URL=INDEX)
    assert code == 0
    assert [c for c in calls if c.startswith("uv")] == []
    assert calls[:2] == [f"{PIP} --no-deps --index-url {INDEX} mlci==1.2.3", f"{PIP} mlci[data]==1.2.3"]


def test_preinstalled_installs_nothing_and_shows_the_version(bench):
    code, calls, out = bench(with_uv=True, MLCI_INSTALL="preinstalled", MLCI_INDEX_URL=INDEX)
    assert code == 0 and calls == ["mlci --version"]
    assert "mlci 1.2.3" in out


def test_the_component_version_wins_over_the_generated_pin_and_falls_back_when_empty(bench):
    _, calls, _ = bench(with_uv=True, MLCI_INSTALL="uv", MLCI_COMPONENT_VERSION="2.0.1")
    assert calls[0].endswith("--no-deps mlci==2.0.1") and calls[1].endswith("mlci[data]==2.0.1")
    _, calls, _ = bench(with_uv=True, MLCI_INSTALL="uv", MLCI_COMPONENT_VERSION="")
    assert calls[0].endswith("--no-deps mlci==1.2.3")


def test_without_an_index_mlci_comes_from_the_default_index(bench):
    _, calls, _ = bench(with_uv=True, MLCI_INSTALL="uv", MLCI_INDEX_URL="")
    assert calls[0] == f"{UV} --no-deps mlci==1.2.3"


@pytest.mark.parametrize(("spec", "first", "second"), [
    (".", ".", "mlci[data]"),
    ("mlci>=1.0,<2", "mlci>=1.0,<2", "mlci[data]>=1.0,<2"),
    ("https://example.com/mlci-1.2.3-py3-none-any.whl", "https://example.com/mlci-1.2.3-py3-none-any.whl",
     "mlci[data]"),
])
def test_a_custom_requirement_is_installed_as_given_and_the_extra_is_added(bench, spec, first, second):
    _, calls, _ = bench(with_uv=True, MLCI_INSTALL="uv", MLCI_INSTALL_SPEC=spec)
    assert calls[:2] == [f"{UV} --no-deps {first}", f"{UV} {second}"]


def test_the_core_alone_when_the_job_has_no_extra(bench):
    _, calls, _ = bench(with_uv=True, MLCI_INSTALL="uv", MLCI_EXTRA="")
    assert calls[:2] == [f"{UV} --no-deps mlci==1.2.3", f"{UV} mlci==1.2.3"]


def test_an_unknown_mode_stops_the_job_with_exit_2(bench):
    code, calls, out = bench(MLCI_INSTALL="conda")
    assert code == 2 and calls == []
    assert "MLCI_INSTALL must be auto, uv, pip or preinstalled, not 'conda'" in out


def test_a_hostile_requirement_stays_one_argument(bench, tmp_path):
    spec = 'mlci==1; touch pwned $(touch pwned2) `touch pwned3`'
    _, calls, _ = bench(with_uv=True, MLCI_INSTALL="uv", MLCI_INSTALL_SPEC=spec, MLCI_INDEX_URL="x y")
    assert not any((tmp_path / name).exists() for name in ("pwned", "pwned2", "pwned3"))
    assert calls[0].endswith(f"--no-deps --index-url x y {spec}")


def test_a_failing_install_fails_the_job_before_the_script(bench, tmp_path):
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "uv", "exit 1\n")
    code, calls, _ = bench(MLCI_INSTALL="uv")
    assert code == 1 and "mlci --version" not in calls
    assert os.path.exists(bin_dir / "uv")
