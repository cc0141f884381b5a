"""OpenMetrics text for `artifacts:reports:metrics` (GitLab's MR metrics widget)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlci.outputs.atomic import atomic_write

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    help: str = ""


def metric_name(raw: str) -> str:
    name = _INVALID.sub("_", raw)
    return name if re.match(r"[a-zA-Z_:]", name) else f"_{name}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render_openmetrics(samples: Iterable[Sample]) -> str:
    by_family: dict[str, list[Sample]] = {}
    for sample in samples:
        by_family.setdefault(metric_name(sample.name), []).append(sample)
    lines: list[str] = []
    for family, members in by_family.items():
        lines.append(f"# TYPE {family} gauge")
        if members[0].help:
            lines.append(f"# HELP {family} {members[0].help.replace(chr(10), ' ')}")
        for sample in members:
            labels = ",".join(f'{metric_name(k)}="{_escape_label(v)}"' for k, v in sorted(sample.labels.items()))
            label_part = f"{{{labels}}}" if labels else ""
            lines.append(f"{family}{label_part} {_format_value(sample.value)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def write_openmetrics(path: str | os.PathLike, samples: Iterable[Sample]) -> Path:
    return atomic_write(path, render_openmetrics(samples))
