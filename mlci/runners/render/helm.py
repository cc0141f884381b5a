"""Kubernetes pools -> gitlab-runner Helm chart values, with the runner's config.toml inside (pure).

One Helm release per pool: a runner authentication token belongs to one runner
(one tag set) in GitLab. The config.toml goes into the chart's `runners.config`,
which the chart passes through Helm's `tpl`: every `{{` that a value could
carry is escaped so Helm prints it instead of running it.
"""

from __future__ import annotations

import json
from typing import Any

from mlci.runners.model import Fleet, Pool
from mlci.runners.render import yamlout

SHM_SIZE = "2Gi"  # PyTorch DataLoader workers share tensors through /dev/shm; the container default is 64 MiB
TPL_OPEN = "{{"
TPL_OPEN_ESCAPED = '{{ "{{" }}'


def escape_tpl(text: str) -> str:
    """Text that Helm's `tpl` renders back to exactly `text` (Go templates act only on `{{`)."""
    return text.replace(TPL_OPEN, TPL_OPEN_ESCAPED)


def unescape_tpl(text: str) -> str:
    return text.replace(TPL_OPEN_ESCAPED, TPL_OPEN)


def pod_spec_patch(pool: Pool) -> dict[str, Any]:
    """The strategic-merge patch on every job pod: GPUs, the hard lifetime and a real /dev/shm."""
    gpus = str(pool.gpu_count)
    return {
        # Kubernetes kills the pod at this age even when the runner manager is gone.
        "activeDeadlineSeconds": pool.max_job_lifetime,
        "containers": [{
            "name": "build",
            "resources": {"requests": {"nvidia.com/gpu": gpus}, "limits": {"nvidia.com/gpu": gpus}},
            "volumeMounts": [{"name": "mlci-dshm", "mountPath": "/dev/shm"}],
        }],
        "volumes": [{"name": "mlci-dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}],
    }


def runner_config(fleet: Fleet, pool: Pool, cpu_max: str, memory_max: str, cpu_default: str,
                  memory_default: str) -> dict[str, Any]:
    """The [[runners]] entry of a kubernetes pool, as data for a TOML writer."""
    tolerations = {f"{t['key']}={t['value']}": t["effect"] for t in pool.node_taints}
    kubernetes = {
        "namespace": fleet.namespace,
        "image": pool.image,
        "pull_policy": [pool.pull_policy],
        # A GPU node scaled from zero needs minutes to boot and load its driver.
        "poll_timeout": fleet.scale_up_timeout,
        "cpu_request": cpu_default,
        "memory_request": memory_default,
        "cpu_request_overwrite_max_allowed": cpu_max,
        "memory_request_overwrite_max_allowed": memory_max,
        "node_selector": dict(sorted({k: v for k, v in pool.node_labels.items()}.items())),
        "node_tolerations": tolerations,
        "pod_labels": {"app.kubernetes.io/managed-by": "mlci", "mlci/pool": pool.name},
        "pod_spec": [{
            "name": "mlci-gpu",
            "patch_type": "strategic",
            "patch": json.dumps(pod_spec_patch(pool), sort_keys=True),
        }],
    }
    return {
        "runners": [{
            "name": pool.release,
            "executor": "kubernetes",
            "limit": pool.concurrency,
            "request_concurrency": min(pool.concurrency, 4),
            "kubernetes": kubernetes,
            # pod_spec patches are behind this flag (GitLab's documented way to request GPUs).
            "feature_flags": {"FF_USE_ADVANCED_POD_SPEC_CONFIGURATION": True},
        }],
    }


def config_toml(config: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(config)


def values(fleet: Fleet, pool: Pool, toml_text: str) -> dict[str, Any]:
    return {
        "gitlabUrl": fleet.gitlab_url,
        "concurrent": pool.concurrency,
        "checkInterval": 3,
        # The runner token lives in this Secret (key runner-token), created from the GitLab module's output.
        "runners": {"secret": f"{pool.release}-token", "config": escape_tpl(toml_text)},
        "rbac": {"create": True},
        # The manager pod tolerates none of the GPU taints, so it never keeps a GPU node alive.
        "podLabels": {"app.kubernetes.io/managed-by": "mlci", "mlci/pool": pool.name},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "terminationGracePeriodSeconds": 3600,
    }


def values_yaml(data: dict[str, Any], pool: Pool) -> str:
    head = (
        f"# gitlab-runner Helm chart values for pool {pool.name}, rendered by `mlci runners render`.\n"
        "# Edit runners: in mlci.yml and render again; hand edits are overwritten.\n"
    )
    return head + yamlout.dump(data)
