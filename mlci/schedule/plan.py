"""Desired vs existing schedules -> the changes that make GitLab match mlci.yml.

mlci owns a schedule only when its description ends with " [mlci:<project>/<key>]",
<project> being this mlci project's name (project.name, slugged): two models in one
GitLab project never touch each other's schedules. A marker without a project
(written by older mlci) is adopted when its key is one of ours and left alone
otherwise. Everything else is reported as unmanaged and never changed; a hand-made
schedule that runs the same ref on the same cron as one of ours gets a warning,
because the pipeline would then retrain twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlci.schedule.model import DesiredSchedule

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MARKER = re.compile(rf"\s*\[mlci:(?:(?P<project>{_NAME})/)?(?P<key>{_NAME})\]\s*$")

CREATE, UPDATE, DELETE, UNCHANGED = "create", "update", "delete", "unchanged"


def with_marker(description: str, key: str, project: str = "") -> str:
    return f"{description} [mlci:{project}/{key}]" if project else f"{description} [mlci:{key}]"


def owned_key(description: str) -> str | None:
    found = _MARKER.search(description or "")
    return found.group("key") if found else None


def marker_project(description: str) -> str | None:
    """The mlci project named in the marker; "" for a marker without one, None without a marker."""
    found = _MARKER.search(description or "")
    return (found.group("project") or "") if found else None


def strip_marker(description: str) -> str:
    return _MARKER.sub("", description or "")


@dataclass(frozen=True)
class VariableChange:
    action: str  # create | update | delete
    key: str
    value: str | None = None


@dataclass(frozen=True)
class ScheduleChange:
    action: str  # create | update | delete | unchanged
    key: str
    description: str  # with the marker, as GitLab shows it
    desired: DesiredSchedule | None = None
    existing: Any = None  # the adapter's RemoteSchedule (id, description, ref, cron, ...)
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # GitLab attribute -> (old, new)
    variables: tuple[VariableChange, ...] = ()


@dataclass(frozen=True)
class Plan:
    changes: tuple[ScheduleChange, ...]
    unmanaged: tuple[Any, ...] = ()  # schedules without this project's marker, left alone
    warnings: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return any(change.action != UNCHANGED for change in self.changes)

    def count(self, action: str) -> int:
        return sum(change.action == action for change in self.changes)


def same_ref(existing: str, desired: str) -> bool:
    """GitLab stores refs expanded (refs/heads/main) since 16.9; mlci.yml says main."""
    return existing in (desired, f"refs/heads/{desired}", f"refs/tags/{desired}")


def _field_changes(existing, desired: DesiredSchedule) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    description = with_marker(desired.description, desired.key, desired.project)
    if existing.description != description:
        changes["description"] = (existing.description, description)
    if " ".join(existing.cron.split()) != desired.cron:
        changes["cron"] = (existing.cron, desired.cron)
    if existing.cron_timezone != desired.cron_timezone:
        changes["cron_timezone"] = (existing.cron_timezone, desired.cron_timezone)
    if not same_ref(existing.ref, desired.ref):
        changes["ref"] = (existing.ref, desired.ref)
    if bool(existing.active) != desired.active:
        changes["active"] = (existing.active, desired.active)
    return changes


def variable_changes(existing: dict[str, str] | None, desired: dict[str, str]) -> tuple[VariableChange, ...]:
    existing = existing or {}
    changes = [VariableChange(CREATE, k, v) for k, v in desired.items() if k not in existing]
    changes += [VariableChange(UPDATE, k, v) for k, v in desired.items() if k in existing and existing[k] != v]
    changes += [VariableChange(DELETE, k) for k in existing if k not in desired]
    return tuple(sorted(changes, key=lambda c: c.key))


def plan_sync(desired: Sequence[DesiredSchedule], existing: Iterable[Any], project: str | None = None) -> Plan:
    """The plan; `existing` items need .id, .description, .cron, .cron_timezone, .ref, .active, .variables.

    `project` is this mlci project's marker name (default: the desired schedules' own)."""
    if project is None:
        project = desired[0].project if desired else ""
    wanted_keys = {want.key for want in desired}
    owned: dict[str, list[Any]] = {}
    unmanaged: list[Any] = []
    warnings: list[str] = []
    for schedule in sorted(existing, key=lambda s: s.id):
        key, owner = owned_key(schedule.description), marker_project(schedule.description)
        if key is not None and (owner == project or (project and owner == "" and key in wanted_keys)):
            owned.setdefault(key, []).append(schedule)  # ours, or ours from before markers named the project
        else:
            unmanaged.append(schedule)
            if key is not None and owner == "" and project:
                warnings.append(f"schedule #{schedule.id} {schedule.description!r} has an mlci marker without a "
                                "project, so it may belong to another model here; left alone (delete it by hand "
                                "if it is this project's)")

    changes: list[ScheduleChange] = []
    for want in desired:
        matches = owned.pop(want.key, [])
        description = with_marker(want.description, want.key, want.project)
        twins = [s for s in unmanaged if owned_key(s.description) is None and same_ref(s.ref, want.ref)
                 and " ".join(str(s.cron).split()) == want.cron and bool(s.active)]
        for twin in twins:
            warnings.append(f"schedule #{twin.id} {twin.description!r}, made by hand, runs {want.ref} on the same "
                            f"cron ({want.cron}) as mlci's {want.key!r}: every run would retrain twice; delete one")
        if not matches:
            changes.append(ScheduleChange(
                CREATE, want.key, description, desired=want,
                variables=variable_changes({}, want.variables),
            ))
            continue
        keep, *duplicates = matches
        fields = _field_changes(keep, want)
        variables = variable_changes(keep.variables, want.variables)
        action = UPDATE if fields or variables else UNCHANGED
        changes.append(ScheduleChange(action, want.key, description, desired=want, existing=keep, fields=fields,
                                      variables=variables))
        # A copied schedule with the same marker would run the pipeline twice.
        changes += [ScheduleChange(DELETE, want.key, dup.description, existing=dup) for dup in duplicates]
    for key, leftovers in owned.items():
        changes += [ScheduleChange(DELETE, key, old.description, existing=old) for old in leftovers]
    return Plan(changes=tuple(changes), unmanaged=tuple(unmanaged), warnings=tuple(warnings))
