"""Pick the best run of a `parallel: matrix` sweep (pure)."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    run_id: str
    experiment_id: str
    metric: float | None  # the run's latest value of the selection metric; None when not logged
    run_name: str = ""
    start_time_ms: int = 0
    params: Mapping[str, str] = field(default_factory=dict)
    job_url: str = ""
    reused: bool = False  # a cache hit of this pipeline re-used a run from an earlier one


@dataclass(frozen=True)
class Selection:
    best: Candidate | None
    ranked: list[Candidate]  # eligible candidates, best first
    ineligible: list[Candidate]  # metric missing or NaN


def goal_from_directions(metric: str, directions: Mapping[str, str]) -> str | None:
    """model.metrics-direction (exact name first, then glob patterns) -> max|min."""
    direction = directions.get(metric)
    if direction is None:
        for pattern, value in directions.items():
            if fnmatch.fnmatchcase(metric, pattern):
                direction = value
                break
    return {"higher": "max", "lower": "min"}.get(direction or "")


def select_best(candidates: Sequence[Candidate], goal: str) -> Selection:
    if goal not in ("max", "min"):
        raise ValueError(f"goal must be max or min, not {goal!r}")
    eligible = [c for c in candidates if c.metric is not None and not math.isnan(c.metric)]
    ineligible = [c for c in candidates if c not in eligible]
    sign = -1.0 if goal == "max" else 1.0
    # Ties go to the run that started first, then to the smaller id, so the choice is stable.
    ranked = sorted(eligible, key=lambda c: (sign * c.metric, c.start_time_ms, c.run_id))
    return Selection(best=ranked[0] if ranked else None, ranked=ranked, ineligible=ineligible)
