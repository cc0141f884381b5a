"""One duration grammar and one duration format for everything mlci reads or prints.

Grammar (mlci.yml, flags): numbers with units, optionally separated by
spaces or commas: "90s", "15m", "36h", "1d12h", "1d 12h", "2 weeks",
"90 minutes". Units: s/sec/second(s), m/min/minute(s), h/hr/hour(s),
d/day(s), w/week(s), any case. Months are refused (their length varies).

Format: the two largest units, space-separated: "1d 12h", "4m 05s" is
written "4m 5s", "0s". Elapsed times under a minute keep one decimal ("8.4s").
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_PART = re.compile(r"(\d+)\s*([A-Za-z]+)")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[A-Za-z]+\s*(?:,\s*)?)+$")
# The same shape for JSON Schemas (units are checked by parse_duration, which says which one is wrong).
SCHEMA_PATTERN = r"^\s*(\d+\s*[A-Za-z]+\s*,?\s*)+$"


def parse_duration(text: str) -> timedelta:
    """'30d', '2w', '36h', '1d12h', '1d 12h', '90 minutes' -> timedelta. ValueError says what is wrong."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit, e.g. \"90s\", \"15m\", \"36h\", \"30d\", "
            "\"2w\" or \"1d 12h\""
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


def format_duration(value: timedelta | float) -> str:
    """'1d 12h', '45m', '4m 5s', '8.4s', '0s': the two largest units."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    seconds = max(seconds, 0.0)
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    whole = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return " ".join(parts[:2]) or "0s"


def gitlab_timeout(delta: timedelta) -> str:
    """A job `timeout:` value GitLab's duration parser reads, e.g. '3h 30m' (whole minutes, at least 1m)."""
    minutes = max(int(delta.total_seconds() // 60), 1)
    hours, minutes = divmod(minutes, 60)
    return " ".join(p for p in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if p)
