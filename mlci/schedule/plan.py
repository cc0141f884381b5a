"""Desired vs existing schedules -> the changes that make GitLab match mlci.yml.

mlci owns a schedule only when its description ends with " [mlci:<key>]".
Everything else is reported as unmanaged and never changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlci.schedule.model import DesiredSchedule

_MARKER = re.compile(r"\s*\[mlci:(?P<key>[A-Za-z0-9][A-Za-z0-9._-]*)\]\s*$")

CREATE, UPDATE, DELETE, UNCHANGED = "create", "update", "delete", "unchanged"


def with_marker(description: str, key: str) -> str:
    return f"{description} [mlci:{key}]"


def owned_key(description: str) -> str | None:
    found = _MARKER.search(description or "")
    return found.group("key") if found else None


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
    unmanaged: tuple[Any, ...] = ()  # schedules without mlci's marker, left alone

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
    description = with_marker(desired.description, desired.key)
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


def plan_sync(desired: Sequence[DesiredSchedule], existing: Iterable[Any]) -> Plan:
    """The plan; `existing` items need .id, .description, .cron, .cron_timezone, .ref, .active, .variables."""
    owned: dict[str, list[Any]] = {}
    unmanaged: list[Any] = []
    for schedule in sorted(existing, key=lambda s: s.id):
        key = owned_key(schedule.description)
        if key is None:
            unmanaged.append(schedule)
        else:
            owned.setdefault(key, []).append(schedule)

    changes: list[ScheduleChange] = []
    for want in desired:
        matches = owned.pop(want.key, [])
        description = with_marker(want.description, want.key)
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
    return Plan(changes=tuple(changes), unmanaged=tuple(unmanaged))
