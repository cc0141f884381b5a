"""Kubernetes objects next to the Helm releases (pure): the runner namespace with a GPU quota, and
the cluster autoscaler's priority expander that prefers spot node groups and falls back to on-demand."""

from __future__ import annotations

from typing import Any

import yaml

from mlci.runners.model import Fleet
from mlci.runners.render import yamlout

MANAGED = {"app.kubernetes.io/managed-by": "mlci"}


def namespace_objects(fleet: Fleet) -> list[dict[str, Any]]:
    pools = fleet.of("kubernetes")
    gpus = sum(p.concurrency * p.gpu_count for p in pools)
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fleet.namespace, "labels": dict(MANAGED)}},
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "mlci-gpu-quota", "namespace": fleet.namespace, "labels": dict(MANAGED)},
            # A second line of defence behind each runner's concurrency: all pools together.
            "spec": {"hard": {"requests.nvidia.com/gpu": str(gpus)}},
        },
    ]


def priority_expander(fleet: Fleet) -> dict[str, Any] | None:
    """ConfigMap for `--expander=priority`; None when no pool falls back from spot to on-demand."""
    groups = [g for p in fleet.of("kubernetes") for g in p.node_groups()]
    if not any(g.capacity == "spot" for g in groups) or not any(g.capacity == "on-demand" for g in groups):
        return None
    # Keys are priorities (higher wins); values are regexes on node group (autoscaling group) names.
    # EKS names a managed node group's autoscaling group eks-<node group>-<uuid>.
    by_priority: dict[int, list[str]] = {1: [".*"]}
    for group in groups:
        by_priority.setdefault(group.priority, []).append(f"^eks-{group.name}-[0-9a-f-]+$")
    priorities = yaml.safe_dump({k: by_priority[k] for k in sorted(by_priority, reverse=True)}, sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cluster-autoscaler-priority-expander", "namespace": "kube-system",
                     "labels": dict(MANAGED)},
        "data": {"priorities": priorities},
    }


def dump_all(objects: list[dict[str, Any]], comment: str) -> str:
    return comment + yamlout.dump_all(objects)
