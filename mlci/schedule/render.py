"""Plain-text tables for `mlci schedule sync` and `mlci schedule list`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mlci.schedule.plan import UNCHANGED, Plan, strip_marker


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in (headers, *rows)]
    return "\n".join(lines)


def _change_details(change) -> str:
    parts = []
    if change.action == "create" and change.desired:
        want = change.desired
        parts.append(f"ref {want.ref}, {want.cron_timezone}" + ("" if want.active else ", inactive"))
    for name, (old, new) in change.fields.items():
        if name == "description":
            parts.append(f"description {strip_marker(old)!r} -> {strip_marker(new)!r}")
        else:
            parts.append(f"{name} {old!r} -> {new!r}")
    for variable in change.variables:
        parts.append(f"{variable.action} variable {variable.key}")
    if change.action == "delete" and change.existing is not None:
        parts.append(f"schedule #{change.existing.id} no longer in mlci.yml or a duplicate")
    return "; ".join(parts) or "-"


def render_plan(plan: Plan) -> str:
    rows = []
    for change in plan.changes:
        cron = change.desired.cron if change.desired else (change.existing.cron if change.existing else "")
        rows.append((change.action, change.key, strip_marker(change.description), cron, _change_details(change)))
    lines = [table(("ACTION", "KEY", "DESCRIPTION", "CRON", "DETAILS"), rows)] if rows else []
    summary = (f"{plan.count('create')} to create, {plan.count('update')} to update, "
               f"{plan.count('delete')} to delete, {plan.count(UNCHANGED)} unchanged")
    if plan.unmanaged:
        summary += f"; {len(plan.unmanaged)} schedule(s) without mlci's marker left alone"
    lines.append(summary)
    return "\n".join(lines)


def render_list(rows: Sequence[tuple[str, str, str, str, str, bool, dt.datetime | None]]) -> str:
    """rows: (key, description, cron, timezone, ref, active, next_run)."""
    body = []
    for key, description, cron, timezone, ref, active, upcoming in rows:
        if not active:
            when = "inactive"
        elif upcoming is None:
            when = "-"
        else:
            utc = upcoming.astimezone(dt.timezone.utc)
            when = f"{upcoming:%Y-%m-%d %H:%M %Z} ({utc:%Y-%m-%d %H:%M} UTC)"
        body.append((key, description, cron, timezone, ref, when))
    return table(("KEY", "DESCRIPTION", "CRON", "TIMEZONE", "REF", "NEXT RUN"), body)
