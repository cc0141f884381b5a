"""OpenTofu/Terraform modules (pure): static HCL shipped with mlci, plus the pools as JSON.

No value from mlci.yml is ever spliced into HCL: the modules read pools.json
with jsondecode(file(...)), and JSON is written by a JSON serializer. A pool
name or tag can therefore never add a block, an expression or an
interpolation to a module.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from mlci.runners.model import GPU_TAINT_KEY, Fleet, Pool, go_duration

ASSETS = "mlci.runners.assets"
CA = "k8s.io/cluster-autoscaler/node-template"
EKS_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


def static_files(module: str) -> dict[str, str]:
    """The module's .tf files, by name."""
    folder = resources.files(ASSETS).joinpath(module)
    return {entry.name: entry.read_text(encoding="utf-8") for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".tf")}


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def eks_node_groups(fleet: Fleet, pool: Pool) -> list[dict[str, Any]]:
    groups = []
    for group in pool.node_groups():
        autoscaler_tags = {f"{CA}/label/{key}": value for key, value in sorted(pool.node_labels.items())}
        for taint in pool.node_taints:
            autoscaler_tags[f"{CA}/taint/{taint['key']}"] = f"{taint['value']}:{taint['effect']}"
        autoscaler_tags[f"{CA}/resources/{GPU_TAINT_KEY}"] = str(pool.gpus_per_node)
        autoscaler_tags[f"{CA}/autoscaling-options/scaledownunneededtime"] = go_duration(pool.idle_timeout)
        groups.append({
            "name": group.name,
            "pool": pool.name,
            "capacity_type": "SPOT" if group.capacity == "spot" else "ON_DEMAND",
            "instance_type": pool.instance_type,
            "ami_type": fleet.ami_type,
            "disk_size": fleet.disk_size,
            "min_size": group.min,
            "max_size": group.max,
            "labels": dict(sorted(pool.node_labels.items())),
            "taints": [{"key": t["key"], "value": t["value"], "effect": EKS_EFFECT[t["effect"]]}
                       for t in pool.node_taints],
            "tags": {"mlci/pool": pool.name, "mlci/capacity": group.capacity},
            "autoscaler_tags": autoscaler_tags,
        })
    return groups


def eks_module(fleet: Fleet, floor_cost: float | None) -> dict[str, str]:
    spec = {
        "version": 1,
        "generated_by": "mlci runners render",
        "monthly_floor_cost": {"amount": floor_cost, "currency": fleet.currency},
        "node_groups": [g for pool in fleet.of("kubernetes") for g in eks_node_groups(fleet, pool)],
    }
    return {**static_files("eks"), "pools.json": _json(spec)}


def gitlab_module(fleet: Fleet) -> dict[str, str]:
    spec = {
        "version": 1,
        "generated_by": "mlci runners render",
        "pools": [
            {
                "name": pool.name,
                "description": f"mlci pool {pool.name} ({pool.executor}, {pool.gpu_count}x {pool.gpu_type})",
                "tags": list(pool.tags),
                "maximum_timeout": pool.max_job_lifetime,
                "token_variable": pool.token_variable,
            }
            for pool in fleet.pools
        ],
    }
    return {**static_files("gitlab"), "pools.json": _json(spec)}
