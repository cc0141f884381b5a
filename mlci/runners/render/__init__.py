"""Fleet -> every file of the runner folder, as {relative path: text} (pure).

Targets, by executor:
  kubernetes pools  helm/<pool>/values.yaml (+ config.toml for review), kubernetes/*.yaml, eks/ (OpenTofu)
  docker pools      ansible/ (role, playbook, group_vars, one config.toml per pool)
  every pool        gitlab/ (OpenTofu: the runners in GitLab with their tags and maximum timeout)
plus README.md (how to apply, the plan table) and plan.json (pools, limits, floor cost).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mlci.runners import plan as plan_mod
from mlci.runners.crosscheck import CrossCheck, quantity
from mlci.runners.model import Fleet, Pool
from mlci.runners.render import ansible, helm, kubernetes, tofu


@dataclass
class Rendered:
    files: dict[str, str] = field(default_factory=dict)
    plan: dict = field(default_factory=dict)


def template_requests() -> tuple[str, str]:
    """The train template's default KUBERNETES_CPU_REQUEST and KUBERNETES_MEMORY_REQUEST."""
    from mlci.generate.stages import load_manifests

    train = load_manifests().by_name("train")
    return str(train.inputs["cpu-request"].default), str(train.inputs["memory-request"].default)


def _smaller(a: str, b: str) -> str:
    return a if (quantity(a) or 0) <= (quantity(b) or 0) else b


def request_limits(pool: Pool, check: CrossCheck, defaults: tuple[str, str]) -> tuple[str, str]:
    """The pool's *_request_overwrite_max_allowed: declared, else the largest request of its jobs, else the
    train template's default (what a job that includes it asks for)."""
    cpu = pool.cpu_request_max or check.cpu_max.get(pool.name) or defaults[0]
    memory = pool.memory_request_max or check.memory_max.get(pool.name) or defaults[1]
    return cpu, memory


def _readme(fleet: Fleet, plan: dict) -> str:
    columns, rows = plan_mod.plan_table(plan)
    kube, docker = fleet.of("kubernetes"), fleet.of("docker")
    lines = [
        "# GPU runner fleet",
        "",
        "Rendered by `mlci runners render` from `runners:` in mlci.yml. Edit mlci.yml and render again;",
        "`mlci runners render --check` (the mlci-runners-render job) fails while these files are stale.",
        "mlci holds no credentials: apply with your own tools, in this order.",
        "",
        "1. `gitlab/` (OpenTofu, GitLab provider, a token with `create_runner` scope in `GITLAB_TOKEN`):",
        "   one runner per pool with its tags and maximum job timeout. Its `runner_tokens` output",
        "   holds each pool's runner authentication token.",
    ]
    step = 2
    if kube:
        lines += [
            f"{step}. `eks/` (OpenTofu, AWS provider): GPU node groups, scaled from zero by the cluster",
            "   autoscaler (auto-discovery; `--expander=priority,least-waste` when a pool falls back from spot).",
            f"{step + 1}. `kubernetes/`: `kubectl apply -f kubernetes/` (namespace, GPU quota, autoscaler priorities).",
            f"{step + 2}. `helm/<pool>/values.yaml`: per pool, the token Secret, then the gitlab-runner chart:",
            "",
            "   ```sh",
            f"   kubectl -n {fleet.namespace} create secret generic mlci-<pool>-token \\",
            "     --from-literal=runner-registration-token= --from-literal=runner-token=\"$TOKEN\"",
            f"   helm upgrade --install mlci-<pool> gitlab/gitlab-runner -n {fleet.namespace} \\",
            "     -f helm/<pool>/values.yaml",
            "   ```",
            "",
            "   The NVIDIA device plugin must run on the GPU nodes (Bottlerocket AMIs bring it).",
        ]
        step += 3
    if docker:
        lines += [
            f"{step}. `ansible/`: list your hosts per pool as in `inventory.example.yml`, then",
            "",
            "   ```sh",
            "   MLCI_RUNNER_TOKEN_<POOL>=\"$TOKEN\" ansible-playbook -i inventory.yml ansible/playbook.yml",
            "   ```",
            "",
            "   The token is read from the environment of the run, never from a file.",
        ]
    lines += ["", "## Plan", "", plan_mod.headline(plan), "", "| " + " | ".join(columns) + " |",
              "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(plan_mod._md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_fleet(fleet: Fleet, check: CrossCheck, defaults: tuple[str, str] | None = None) -> Rendered:
    defaults = defaults or template_requests()
    out = Rendered()
    limits: dict[str, tuple[str, str]] = {}
    kube = fleet.of("kubernetes")
    for pool in kube:
        cpu_max, memory_max = request_limits(pool, check, defaults)
        limits[pool.name] = (cpu_max, memory_max)
        config = helm.runner_config(
            fleet, pool, cpu_max, memory_max, _smaller(defaults[0], cpu_max), _smaller(defaults[1], memory_max),
        )
        toml_text = helm.config_toml(config)
        out.files[f"helm/{pool.name}/config.toml"] = (
            f"# The gitlab-runner config.toml template of pool {pool.name} (runners.config in values.yaml).\n"
            + toml_text
        )
        out.files[f"helm/{pool.name}/values.yaml"] = helm.values_yaml(helm.values(fleet, pool, toml_text), pool)
    plan = plan_mod.build_plan(fleet, check, limits)
    if kube:
        objects = kubernetes.namespace_objects(fleet)
        out.files["kubernetes/runner-namespace.yaml"] = kubernetes.dump_all(
            objects, "# Namespace of the mlci runners and jobs, with a cap on the GPUs all pools may hold.\n",
        )
        expander = kubernetes.priority_expander(fleet)
        if expander is not None:
            out.files["kubernetes/cluster-autoscaler-priority-expander.yaml"] = kubernetes.dump_all(
                [expander], "# Spot node groups first, on-demand when spot cannot be had (--expander=priority).\n",
            )
        floor = sum((fleet.cost(p).floor_monthly or 0.0) for p in kube)
        known = all(fleet.cost(p).floor_monthly is not None for p in kube)
        for name, text in tofu.eks_module(fleet, round(floor, 2) if known else None).items():
            out.files[f"eks/{name}"] = text
    if fleet.pools:
        for name, text in tofu.gitlab_module(fleet).items():
            out.files[f"gitlab/{name}"] = text
    if fleet.of("docker"):
        for name, text in ansible.ansible_files(fleet).items():
            out.files[f"ansible/{name}"] = text
    out.files["README.md"] = _readme(fleet, plan)
    out.files[plan_mod.PLAN_FILE] = json.dumps(plan, indent=2, ensure_ascii=False) + "\n"
    out.plan = plan
    return out
