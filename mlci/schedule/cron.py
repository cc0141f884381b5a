"""Cron checks and next-run times, with croniter and zoneinfo (no home-made cron parser)."""

from __future__ import annotations

import datetime as dt


def cron_problem(expression: str) -> str | None:
    """Why GitLab would refuse this cron, or None. GitLab takes five fields (no seconds)."""
    from croniter import croniter

    fields = expression.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    if any(field.upper().startswith("H") for field in fields):
        return "hashed 'H' fields are a Jenkins extension that GitLab does not accept"
    if not croniter.is_valid(expression):
        return "not a valid cron expression"
    return None


def timezone_problem(name: str) -> str | None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "unknown time zone; use an IANA name such as UTC or Europe/Berlin"
    return None


def next_run(expression: str, timezone: str, now: dt.datetime | None = None) -> dt.datetime:
    """The next time the cron fires, as an aware datetime in `timezone` (DST handled by zoneinfo)."""
    import zoneinfo

    from croniter import croniter

    zone = zoneinfo.ZoneInfo(timezone)
    start = (now or dt.datetime.now(dt.timezone.utc)).astimezone(zone)
    return croniter(expression, start).get_next(dt.datetime)
