"""`mlci schedule sync [--dry-run]` and `mlci schedule list`: GitLab pipeline schedules as code."""

from __future__ import annotations

import json

from mlci.errors import UsageError


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sync = sub.add_parser(
        "sync", help="create, update or delete the schedules mlci owns so GitLab matches mlci.yml",
        description="Make the project's pipeline schedules match `schedules:` in mlci.yml. Only schedules whose "
        "description ends with ' [mlci:<project>/<key>]' (this project.name) are touched; schedules made by hand "
        "or by another mlci project in the same GitLab project are left alone.",
    )
    sync.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    listing = sub.add_parser("list", help="show the schedules mlci owns with their next run time")
    listing.add_argument("--all", action="store_true", help="also show schedules mlci does not own")
    listing.add_argument("--format", choices=["text", "json"], default="text")


def run(args, ctx) -> int:
    if args.action == "sync":
        return _sync(args, ctx)
    if args.action == "list":
        return _list(args, ctx)
    raise UsageError("usage: mlci schedule {sync [--dry-run], list [--all] [--format text|json]}")


def _sync(args, ctx) -> int:
    from mlci.adapters.gitlab import GitLabClient
    from mlci.schedule import desired_schedules, owned_key, plan_sync
    from mlci.schedule.model import project_marker
    from mlci.schedule.render import render_plan

    config = ctx.config(required=True)
    desired = desired_schedules(config, ctx.env)
    client = GitLabClient.from_config(config, ctx.env)
    existing = [client.schedule(s.id) if owned_key(s.description) else s for s in client.list_schedules()]
    plan = plan_sync(desired, existing, project_marker(config))
    ctx.info(render_plan(plan))
    for warning in plan.warnings:
        ctx.warn(warning)
    if not plan.has_changes:
        ctx.info("nothing to change: GitLab's schedules already match mlci.yml")
        return 0
    if args.dry_run:
        ctx.info("dry run: nothing was changed")
        return 0
    _apply(plan, client, ctx)
    return 0


def _apply(plan, client, ctx) -> None:
    todo = [change for change in plan.changes if change.action != "unchanged"]
    done = 0
    try:
        for change in todo:
            if change.action == "create":
                want = change.desired
                schedule_id = client.create_schedule(
                    description=change.description, ref=want.ref, cron=want.cron,
                    cron_timezone=want.cron_timezone, active=want.active,
                ).id
            elif change.action == "delete":
                client.delete_schedule(change.existing.id)
                done += 1
                continue
            else:
                schedule_id = change.existing.id
                if change.fields:
                    client.update_schedule(schedule_id, {name: new for name, (_old, new) in change.fields.items()})
            for variable in change.variables:
                if variable.action == "delete":
                    client.delete_schedule_variable(schedule_id, variable.key)
                else:
                    client.set_schedule_variable(schedule_id, variable.key, variable.value,
                                                 exists=variable.action == "update")
            done += 1
    except Exception:
        ctx.warn(f"stopped after {done} of {len(todo)} change(s); re-run `mlci schedule sync` to finish")
        raise
    ctx.info(f"applied {done} change(s)")


def _list(args, ctx) -> int:
    from mlci.adapters.gitlab import GitLabClient
    from mlci.schedule.cron import cron_problem, next_run, timezone_problem
    from mlci.schedule.model import project_marker
    from mlci.schedule.plan import marker_project, owned_key, strip_marker
    from mlci.schedule.render import render_list

    config = ctx.config()
    client = GitLabClient.from_config(config, ctx.env)
    schedules = client.list_schedules()
    ours = project_marker(config)
    shown = [s for s in schedules if args.all or (owned_key(s.description) and marker_project(s.description) in
                                                  (ours, ""))]
    rows = []
    for schedule in shown:
        computable = not cron_problem(schedule.cron) and not timezone_problem(schedule.cron_timezone)
        upcoming = next_run(schedule.cron, schedule.cron_timezone) if computable and schedule.active else None
        rows.append((
            owned_key(schedule.description) or "(not mlci)",
            strip_marker(schedule.description),
            schedule.cron,
            schedule.cron_timezone,
            schedule.ref.removeprefix("refs/heads/"),
            schedule.active,
            upcoming,
            schedule,
        ))
    if args.format == "json":
        ctx.info(json.dumps({"version": 1, "schedules": [
            {"id": s.id, "key": key, "description": description, "cron": cron, "cron_timezone": tz, "ref": ref,
             "active": active, "next_run": upcoming.isoformat() if upcoming else None, "owned": key != "(not mlci)"}
            for key, description, cron, tz, ref, active, upcoming, s in rows
        ]}, indent=2))
        return 0
    if rows:
        ctx.info(render_list([row[:7] for row in rows]))
    else:
        ctx.info("no schedules owned by mlci; run `mlci schedule sync` to create the ones in mlci.yml")
    hidden = len(schedules) - len(shown)
    if hidden:
        ctx.info(f"{hidden} schedule(s) without mlci's marker not shown (use --all)")
    return 0
