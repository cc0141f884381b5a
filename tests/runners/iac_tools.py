"""The IaC checkers (checkov, ansible-core, ansible-lint) in a virtualenv of their own.

They pin dozens of packages (boto3, networkx, ...) that must not meet mlci's own dependencies, so
they live in .venv-iac/, built from tests/runners/iac-tools.txt with uv (pip when uv is missing).
`make test` builds it first (`python -m tests.runners.iac_tools`); a test that needs it builds it on
first use, once, under a file lock shared by the pytest-xdist workers.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from tests.tools import find_uv

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".venv-iac"
REQUIREMENTS = Path(__file__).with_name("iac-tools.txt")


def _build() -> None:
    uv = find_uv()
    if uv:
        subprocess.run([uv, "venv", "-q", "--allow-existing", "--python", sys.executable, str(TOOLS_DIR)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "-p", str(TOOLS_DIR / "bin" / "python"), "-r", str(REQUIREMENTS)],
                       check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS_DIR)], check=True)
        subprocess.run([str(TOOLS_DIR / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
                       check=True)


def tools_bin() -> Path:
    """bin/ of the tools virtualenv, built or rebuilt when iac-tools.txt changed."""
    wanted = REQUIREMENTS.read_text(encoding="utf-8")
    stamp = TOOLS_DIR / ".mlci-requirements"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return TOOLS_DIR / "bin"
    lock_path = REPO_ROOT / ".venv-iac.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted):
            _build()
            stamp.write_text(wanted, encoding="utf-8")
    return TOOLS_DIR / "bin"


if __name__ == "__main__":
    print(tools_bin())
