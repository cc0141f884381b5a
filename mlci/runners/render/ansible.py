"""Docker pools -> an Ansible role for VMs and bare metal (pure).

The role's tasks and templates ship with mlci unchanged; what depends on
mlci.yml is data: a config.toml per pool (written by a TOML serializer and
copied verbatim, never templated, so `{{` in a value stays text) and
group_vars with the pool's limits (YAML from a YAML serializer).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from mlci.runners.model import Fleet, Pool
from mlci.runners.render import yamlout

ASSETS = "mlci.runners.assets"
SHM_BYTES = 2 * 1024**3  # PyTorch DataLoader workers share tensors through /dev/shm; Docker gives 64 MiB
METRICS_ADDRESS = "127.0.0.1:9252"  # the idle guard asks the runner whether a job is running
ROLE = "roles/mlci_gpu_runner"


def _walk(node: Any, prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in sorted(node.iterdir(), key=lambda e: e.name):
        if entry.name in ("__init__.py", "__pycache__"):
            continue
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.update(_walk(entry, f"{name}/"))
        else:
            found[name] = entry.read_text(encoding="utf-8")
    return found


def static_files() -> dict[str, str]:
    return _walk(resources.files(ASSETS).joinpath("ansible"))


def runner_config(fleet: Fleet, pool: Pool) -> dict[str, Any]:
    return {
        "concurrent": 1,
        "check_interval": 3,
        "listen_address": METRICS_ADDRESS,
        "runners": [{
            "name": pool.release,
            "url": fleet.gitlab_url,
            # Expanded by gitlab-runner (18.10+) from the service environment the role sets.
            "token": "${MLCI_RUNNER_TOKEN}",
            "executor": "docker",
            "limit": 1,
            "docker": {
                "image": pool.image,
                "gpus": "all",
                "pull_policy": [pool.pull_policy],
                "privileged": False,
                "shm_size": SHM_BYTES,
                "volumes": ["/cache"],
            },
        }],
    }


def group_vars(pool: Pool) -> dict[str, Any]:
    return {
        "mlci_gpu_runner_pool": pool.name,
        "mlci_gpu_runner_group": pool.ansible_group,
        "mlci_gpu_runner_token_env": pool.token_variable,
        "mlci_gpu_runner_max_hosts": pool.max,
        "mlci_gpu_runner_max_job_lifetime_seconds": pool.max_job_lifetime,
        "mlci_gpu_runner_idle_timeout_seconds": pool.idle_timeout,
        # Scale-to-zero hosts power themselves off when idle; always-on hosts stay up.
        "mlci_gpu_runner_idle_poweroff": pool.min == 0,
    }


def inventory(pools: list[Pool]) -> dict[str, Any]:
    children = {
        pool.ansible_group: {
            "hosts": {f"{pool.name}-{n}.example.internal": None for n in range(1, min(pool.max, 2) + 1)},
        }
        for pool in pools
    }
    return {"mlci_runners": {"children": children}}


def _yaml(data: Any, comment: str) -> str:
    return "---\n" + comment + yamlout.dump(data)


def ansible_files(fleet: Fleet) -> dict[str, str]:
    import tomli_w

    pools = fleet.of("docker")
    files = static_files()
    for pool in pools:
        files[f"{ROLE}/files/pools/{pool.name}/config.toml"] = (
            f"# gitlab-runner config.toml of mlci pool {pool.name}, rendered by `mlci runners render`.\n"
            + tomli_w.dumps(runner_config(fleet, pool))
        )
        files[f"group_vars/{pool.ansible_group}.yml"] = _yaml(
            group_vars(pool), f"# mlci pool {pool.name}: rendered by `mlci runners render` from mlci.yml.\n",
        )
    files["inventory.example.yml"] = _yaml(
        inventory(pools),
        "# One group per mlci docker pool; replace the example hosts with yours (at most the pool's max).\n",
    )
    return files
