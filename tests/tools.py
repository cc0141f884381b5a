"""Executables the tests run that may not be on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_uv() -> str | None:
    """uv from PATH, else the copy `make` bootstrapped into the virtualenv on machines without it."""
    beside = Path(sys.executable).with_name("uv")
    return shutil.which("uv") or (str(beside) if beside.exists() else None)


def uv() -> str:
    found = find_uv()
    if found is None:
        raise RuntimeError("uv not found on PATH or beside the interpreter: `make test` installs it")
    return found
