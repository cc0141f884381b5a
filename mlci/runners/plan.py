"""The fleet plan: pools, limits and cost, as JSON (plan.json, runners-plan.json), markdown and an MR
report section (pure). Everything a reviewer needs to judge a change to `runners:` before it is applied."""

from __future__ import annotations

from typing import Any

from mlci.runners.crosscheck import CrossCheck
from mlci.runners.model import HOURS_PER_MONTH, Fleet, Pool

PLAN_FILE = "plan.json"
ARTIFACT = "runners-plan.json"


def _total(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else round(sum(v for v in values if v is not None), 2)


def pool_entry(fleet: Fleet, pool: Pool, check: CrossCheck, cpu_max: str | None, memory_max: str | None) -> dict:
    cost = fleet.cost(pool)
    return {
        "name": pool.name,
        "tags": list(pool.tags),
        "executor": pool.executor,
        "gpu": {"type": pool.gpu_type, "per_job": pool.gpu_count, "per_node": pool.gpus_per_node},
        "instance_type": pool.instance_type,
        "nodes": {"min": pool.min, "max": pool.max},
        "jobs_per_node": pool.jobs_per_node,
        "concurrency": pool.concurrency,
        "idle_timeout": pool.idle_timeout_text,
        "idle_timeout_seconds": pool.idle_timeout,
        "max_job_lifetime": pool.max_job_lifetime_text,
        "max_job_lifetime_seconds": pool.max_job_lifetime,
        "capacity": pool.capacity,
        "fallback": pool.fallback,
        "pull_policy": pool.pull_policy,
        "always_on": pool.always_on,
        "request_limits": {"cpu": cpu_max, "memory": memory_max} if pool.executor == "kubernetes" else None,
        "node_groups": [
            {"name": g.name, "capacity": g.capacity, "min": g.min, "max": g.max} for g in pool.node_groups()
        ] if pool.executor == "kubernetes" else [],
        "jobs": list(check.served.get(pool.name, [])),
        "cost": {
            "hourly_per_node": cost.hourly,
            "floor_monthly": cost.floor_monthly,
            "ceiling_monthly": cost.ceiling_monthly,
        },
    }


def build_plan(fleet: Fleet, check: CrossCheck, limits: dict[str, tuple[str, str]]) -> dict[str, Any]:
    pools = [pool_entry(fleet, p, check, *limits.get(p.name, (None, None))) for p in fleet.pools]
    return {
        "version": 1,
        "generated_by": "mlci runners render",
        "currency": fleet.currency,
        "hours_per_month": HOURS_PER_MONTH,
        "pools": pools,
        "totals": {
            "floor_monthly": _total([p["cost"]["floor_monthly"] for p in pools]),
            "ceiling_monthly": _total([p["cost"]["ceiling_monthly"] for p in pools]),
            "concurrency": sum(p["concurrency"] for p in pools),
        },
        "pipeline_checked": check.checked,
    }


def findings_entries(check: CrossCheck) -> list[dict[str, str]]:
    """The cross-check's findings for the plan artifact (not the committed plan: line numbers move)."""
    return [
        {"rule": f.rule_id, "severity": f.severity, "message": f.message, "location": f"{f.file}:{f.line}:{f.column}"}
        for f in check.findings
    ]


def money(amount: Any, currency: str) -> str:
    if not isinstance(amount, (int, float)):
        return "n/a"
    return f"{amount:,.2f} {currency}"


def plan_table(plan: dict[str, Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Columns and rows shared by the markdown plan and the MR report section (plain text cells)."""
    columns = ("Pool", "Tags", "Executor", "GPUs per job", "Nodes", "Concurrent jobs", "Idle timeout",
               "Max job lifetime", "Capacity", "Floor / month", "Ceiling / month")
    currency = str(plan.get("currency") or "")
    rows = []
    for pool in plan.get("pools") or []:
        if not isinstance(pool, dict):
            continue
        gpu = pool.get("gpu") or {}
        nodes = pool.get("nodes") or {}
        capacity = str(pool.get("capacity", ""))
        if capacity == "spot":
            capacity += f" (fallback {pool.get('fallback')})"
        if pool.get("always_on"):
            capacity += ", always on"
        cost = pool.get("cost") or {}
        rows.append((
            str(pool.get("name", "")), ", ".join(str(t) for t in pool.get("tags") or []), str(pool.get("executor", "")),
            f"{gpu.get('per_job', '')}x {gpu.get('type', '')}", f"{nodes.get('min', '')}-{nodes.get('max', '')}",
            str(pool.get("concurrency", "")), str(pool.get("idle_timeout", "")), str(pool.get("max_job_lifetime", "")),
            capacity, money(cost.get("floor_monthly"), currency), money(cost.get("ceiling_monthly"), currency),
        ))
    return columns, rows


def headline(plan: dict[str, Any]) -> str:
    totals = plan.get("totals") or {}
    currency = str(plan.get("currency") or "")
    count = len(plan.get("pools") or [])
    return (f"{count} pool(s), up to {totals.get('concurrency', 0)} concurrent GPU jobs; idle floor "
            f"{money(totals.get('floor_monthly'), currency)} per month, ceiling "
            f"{money(totals.get('ceiling_monthly'), currency)}")


def _md_cell(text: str) -> str:
    from mlci.report.markup import md_text

    return md_text(text, 200)


def render_markdown(plan: dict[str, Any], *, stale: list[str] | None = None) -> str:
    columns, rows = plan_table(plan)
    lines = ["## Runner fleet plan", "", _md_cell(headline(plan)), ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(_md_cell(cell) for cell in row) + " |")
    lines.append("")
    lines.append(f"Costs use `runners.prices` at {plan.get('hours_per_month')} hours a month: the floor is what the "
                 "pools cost while idle (min nodes), the ceiling what they cost at max nodes.")
    for finding in plan.get("findings") or []:
        lines.append(f"- {_md_cell(str(finding.get('severity')))}: {_md_cell(str(finding.get('location')))} "
                     f"{_md_cell(str(finding.get('message')))}")
    if stale:
        lines += ["", "The committed files differ from mlci.yml (run `mlci runners render` and commit):"]
        lines += [f"- `{_md_cell(path)}`" for path in stale]
    return "\n".join(lines) + "\n"


def report_section(plan: dict[str, Any]):
    """The MR report's "Runner fleet" section (mlci.report.model.Section)."""
    from mlci.report.model import Section, Table

    columns, rows = plan_table(plan)
    findings = [f for f in plan.get("findings") or [] if isinstance(f, dict)]
    errors = [f for f in findings if f.get("severity") == "error"]
    stale = [str(p) for p in plan.get("stale_files") or []]
    notes = [f"{f.get('severity')}: {f.get('location')} {f.get('message')}" for f in findings]
    if stale:
        notes.append("the committed runner files differ from mlci.yml: " + ", ".join(stale[:10]))
    status = "failed" if errors or stale else "info"
    return Section(
        key="runners", title="Runner fleet", status=status, headline=headline(plan),
        table=Table(columns, tuple(rows)), notes=tuple(notes),
    )
