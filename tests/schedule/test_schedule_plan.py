"""The pure planner: only marked schedules are ever changed, variables are diffed one by one."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlci.schedule import DesiredSchedule, owned_key, plan_sync, with_marker


@dataclass
class Remote:
    id: int
    description: str
    cron: str = "0 3 * * *"
    cron_timezone: str = "UTC"
    ref: str = "refs/heads/main"
    active: bool = True
    variables: dict | None = field(default_factory=dict)


def want(key="nightly", **overrides) -> DesiredSchedule:
    values = dict(key=key, description="Nightly", cron="0 3 * * *", cron_timezone="UTC", ref="main",
                  active=True, variables={})
    values.update(overrides)
    return DesiredSchedule(**values)


def test_marker_round_trip_and_lookalikes():
    assert owned_key(with_marker("Nightly retrain", "nightly")) == "nightly"
    assert owned_key("Nightly retrain") is None
    assert owned_key("Nightly [mlci:] retrain") is None
    assert owned_key("[mlci:nightly] made by hand, marker not at the end") is None


def test_missing_schedule_is_created_with_its_variables():
    plan = plan_sync([want(variables={"MLCI_PIPELINE": "retrain"})], [])
    (change,) = plan.changes
    assert change.action == "create" and change.description == "Nightly [mlci:nightly]"
    assert [(v.action, v.key, v.value) for v in change.variables] == [("create", "MLCI_PIPELINE", "retrain")]


def test_matching_schedule_with_expanded_ref_is_unchanged():
    plan = plan_sync([want()], [Remote(1, "Nightly [mlci:nightly]")])
    assert [c.action for c in plan.changes] == ["unchanged"] and not plan.has_changes


def test_changed_fields_and_variables_become_one_update():
    remote = Remote(1, "Old name [mlci:nightly]", cron="0 2 * * *", active=False,
                    variables={"KEEP": "1", "CHANGE": "old", "DROP": "x"})
    plan = plan_sync([want(variables={"KEEP": "1", "CHANGE": "new", "ADD": "y"})], [remote])
    (change,) = plan.changes
    assert change.action == "update"
    assert change.fields == {
        "description": ("Old name [mlci:nightly]", "Nightly [mlci:nightly]"),
        "cron": ("0 2 * * *", "0 3 * * *"),
        "active": (False, True),
    }
    assert {(v.action, v.key) for v in change.variables} == {("create", "ADD"), ("update", "CHANGE"),
                                                             ("delete", "DROP")}


def test_unmarked_schedules_are_never_touched_even_with_the_same_description():
    hand_made = Remote(5, "Nightly", cron="* * * * *")
    plan = plan_sync([], [hand_made, Remote(6, "Old [mlci:old]")])
    assert [(c.action, c.existing.id) for c in plan.changes] == [("delete", 6)]
    assert plan.unmanaged == (hand_made,)


def test_a_copied_owned_schedule_is_deleted_so_the_pipeline_runs_once():
    plan = plan_sync([want()], [Remote(9, "Nightly [mlci:nightly]"), Remote(3, "Nightly [mlci:nightly]")])
    assert sorted((c.action, c.existing.id) for c in plan.changes) == [("delete", 9), ("unchanged", 3)]


def test_ref_given_as_a_different_branch_is_an_update():
    plan = plan_sync([want(ref="release")], [Remote(1, "Nightly [mlci:nightly]")])
    assert plan.changes[0].fields == {"ref": ("refs/heads/main", "release")}
