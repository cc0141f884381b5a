"""Whether a scheduled pipeline retrains: a pure function of drift, champion age and force.

GitLab evaluates `rules:` when the pipeline is created, so this verdict cannot
gate jobs in the same pipeline; the decide job turns it into a child pipeline
instead (see child_pipeline.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_PART = re.compile(r"(\d+)\s*([A-Za-z]+)")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[A-Za-z]+\s*(?:,\s*)?)+$")


def parse_duration(text: str) -> timedelta:
    """'30d', '2w', '36h', '1d 12h', '90 minutes' -> timedelta. ValueError says what is wrong."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit, e.g. \"30d\", \"2w\", \"36h\" or \"1d 12h\""
        )
    total = 0
    for amount, unit in _PART.findall(text):
        seconds = _UNIT_SECONDS.get(unit.lower())
        if seconds is None:
            hint = " (months vary in length; write days, e.g. \"30d\")" if unit.lower().startswith("mo") else ""
            raise ValueError(f"unknown unit {unit!r} in {text!r}; use s, m, h, d or w{hint}")
        total += int(amount) * seconds
    if total <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return timedelta(seconds=total)


def format_duration(delta: timedelta) -> str:
    """A short human reading of a duration: the two largest units, e.g. '31d 2h', '45m', '0s'."""
    seconds = max(int(delta.total_seconds()), 0)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2]) or "0s"


def gitlab_timeout(delta: timedelta) -> str:
    """A job `timeout:` value GitLab's duration parser reads, e.g. '3h 30m'."""
    minutes = max(int(delta.total_seconds() // 60), 1)
    hours, minutes = divmod(minutes, 60)
    return " ".join(p for p in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if p)


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
