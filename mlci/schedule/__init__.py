"""Schedules as code: desired schedules from mlci.yml vs GitLab's -> a create/update/delete plan.

Pure: no network here. The GitLab adapter fetches and applies; `mlci schedule` wires them.
"""

from mlci.schedule.model import DesiredSchedule, desired_schedules
from mlci.schedule.plan import Plan, ScheduleChange, VariableChange, owned_key, plan_sync, with_marker

__all__ = [
    "DesiredSchedule",
    "Plan",
    "ScheduleChange",
    "VariableChange",
    "desired_schedules",
    "owned_key",
    "plan_sync",
    "with_marker",
]
