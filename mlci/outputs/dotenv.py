"""dotenv artifacts for `artifacts:reports:dotenv`.

GitLab's parser takes one KEY=VALUE per line, no multi-line values and no
quoting rules beyond the raw text, so values are validated, not escaped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from mlci.outputs.atomic import atomic_write

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def render_dotenv(values: Mapping[str, object]) -> str:
    lines = []
    for key, value in values.items():
        if not _KEY.match(key):
            raise ValueError(f"invalid dotenv variable name {key!r}")
        text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        if "\n" in text or "\r" in text:
            raise ValueError(f"dotenv value for {key} contains a newline")
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


def write_dotenv(path: str | os.PathLike, values: Mapping[str, object]) -> Path:
    return atomic_write(path, render_dotenv(values))


def read_dotenv(path: str | os.PathLike) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values
