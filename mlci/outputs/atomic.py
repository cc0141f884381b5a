"""Atomic file writes: a temp file in the same directory, fsync, os.replace.

A job killed mid-write leaves either the old file or the new one, never half.
Every text written here passes through mlci's redaction first (mlci.redact):
artifacts are read by every project member, so no secret reaches a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ARTIFACT_VERSION = 1


def atomic_write(path: str | os.PathLike, data: str | bytes, *, mode: int = 0o644, redacted: bool = True) -> Path:
    """`redacted=False` only for files whose every byte comes from mlci's own package (rendered templates:
    their documented examples such as `postgresql://user:password@host` must stay as written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if redacted:
        from mlci.redact import current_redactor

        data = current_redactor().data(data)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write a JSON artifact; every one carries `"version": 1` first."""
    body = {"version": ARTIFACT_VERSION, **{k: v for k, v in payload.items() if k != "version"}}
    return atomic_write(path, json.dumps(body, indent=2, sort_keys=False, default=str) + "\n")
