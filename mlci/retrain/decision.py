"""Whether a scheduled pipeline retrains: a pure function of drift, champion age and force.

GitLab evaluates `rules:` when the pipeline is created, so this verdict cannot
gate jobs in the same pipeline; the decide job turns it into a child pipeline
instead (see child_pipeline.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mlci.durations import format_duration


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def decide(
    drift: bool | None,
    champion_created: datetime | None,
    now: datetime,
    max_model_age: timedelta | None,
    force: bool,
) -> Decision:
    """Retrain when forced, when the data drifted, when there is no champion, or when it is too old.

    `drift` is None when the drift job gave no verdict: that alone never starts
    a GPU job, but the reasons say so. Every reason that holds is listed, so the
    log explains the whole decision, not just the first trigger.
    """
    reasons: list[str] = []
    if force:
        reasons.append("forced by MLCI_FORCE_RETRAIN=true")
    if drift is True:
        reasons.append("data drift detected")
    age: timedelta | None = None
    if champion_created is None:
        reasons.append("there is no champion model yet")
    else:
        age = max(now - champion_created, timedelta(0))  # clock skew must not make a model young
        if max_model_age is not None and age > max_model_age:
            reasons.append(
                f"the champion is {format_duration(age)} old, older than max-model-age {format_duration(max_model_age)}"
            )
    if reasons:
        return Decision(retrain=True, reasons=reasons)

    why_not = ["no data drift" if drift is False else "no drift verdict (MLCI_DRIFT was not set by the drift job)"]
    if max_model_age is None:
        why_not.append(f"the champion is {format_duration(age)} old and no max-model-age is set")
    else:
        why_not.append(
            f"the champion is {format_duration(age)} old, within max-model-age {format_duration(max_model_age)}"
        )
    return Decision(retrain=False, reasons=why_not)


def parse_flag(name: str, raw: str | None) -> bool | None:
    """A true/false CI variable: None when unset or empty, ValueError for anything unclear."""
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is neither true nor false")
