"""What `mlci runners render` writes, checked the way each consumer reads it: the gitlab-runner chart's
documented values, TOML as gitlab-runner parses it, the Kubernetes schemas, HCL as OpenTofu parses it,
and the pools agreeing across targets (labels, taints, GPUs, limits)."""

from __future__ import annotations

import json
import os
import re
import sys

import jsonschema
import kubernetes_validate
import pytest
import yaml

from mlci.runners.render.helm import unescape_tpl
from tests.runners.conftest import VENDOR, Project

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

K8S_VERSION = "1.30.0"
CHART_SCHEMA = json.loads((VENDOR / "gitlab-runner-chart" / "values.schema.json").read_text())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """(files, plan, cross-check) of the standard fleet and pipeline, rendered once for the module."""
    root = tmp_path_factory.mktemp("fleet")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name in list(os.environ):
            if name.startswith(("CI_", "MLCI_", "GITLAB_")):
                patch.delenv(name)
        files, check = Project(root).render()
    return files.files, files.plan, check


def helm_values(files, name):
    return yaml.safe_load(files[f"helm/{name}/values.yaml"])


def runner_toml(files, name):
    return tomllib.loads(unescape_tpl(helm_values(files, name)["runners"]["config"]))


def job_pod(runner: dict, image: str = "registry.example/train:1") -> dict:
    """The pod the Kubernetes executor builds for a job of this runner: its build container, the node
    selector and tolerations, then the pod_spec strategic patch (containers merge by name)."""
    kube = runner["kubernetes"]
    tolerations = []
    for key_value, effect in kube["node_tolerations"].items():
        key, _, value = key_value.partition("=")
        tolerations.append({"key": key, "operator": "Equal", "value": value, "effect": effect})
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "runner-job", "namespace": kube["namespace"], "labels": kube["pod_labels"]},
        "spec": {
            "containers": [{"name": "build", "image": image, "resources": {
                "requests": {"cpu": kube["cpu_request"], "memory": kube["memory_request"]}}}],
            "nodeSelector": kube["node_selector"],
            "tolerations": tolerations,
        },
    }
    for entry in kube["pod_spec"]:
        assert entry["patch_type"] == "strategic"
        patch = json.loads(entry["patch"])
        for container in patch.pop("containers", []):
            target = next(c for c in pod["spec"]["containers"] if c["name"] == container["name"])
            for key, value in container.items():
                if isinstance(value, dict):
                    for sub, inner in value.items():
                        target.setdefault(key, {}).setdefault(sub, {}).update(inner)
                elif isinstance(value, list):
                    target.setdefault(key, []).extend(value)
        for key, value in patch.items():
            if isinstance(value, list):
                pod["spec"].setdefault(key, []).extend(value)
            else:
                pod["spec"][key] = value
    return pod


def test_helm_values_follow_the_charts_documented_options(rendered):
    files, _, _ = rendered
    for name in ("a10g", "quad"):
        values = helm_values(files, name)
        jsonschema.validate(values, CHART_SCHEMA)
        assert values["runners"]["secret"] == f"mlci-{name}-token"
        assert values["gitlabUrl"] == "https://gitlab.example.com"
    assert "helm/lab/values.yaml" not in files  # docker pools are Ansible's


def test_a_misspelt_chart_option_would_fail_the_schema(rendered):
    values = helm_values(rendered[0], "a10g")
    values["runners"]["configg"] = values["runners"].pop("config")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, CHART_SCHEMA)


def test_the_config_toml_template_carries_gpus_limits_and_concurrency(rendered):
    files, _, _ = rendered
    config = runner_toml(files, "quad")
    assert config == tomllib.loads(files["helm/quad/config.toml"])  # the review copy is the same config
    runner = config["runners"][0]
    kube = runner["kubernetes"]
    assert runner["limit"] == 4 == helm_values(files, "quad")["concurrent"]  # 2 nodes x (4 GPUs / 2 per job)
    assert runner["feature_flags"]["FF_USE_ADVANCED_POD_SPEC_CONFIGURATION"] is True
    patch = json.loads(kube["pod_spec"][0]["patch"])
    assert patch["activeDeadlineSeconds"] == 12 * 3600
    assert patch["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert kube["node_selector"] == {"mlci/pool": "quad", "k8s.amazonaws.com/accelerator": "nvidia-a10g"}
    assert kube["node_tolerations"] == {"nvidia.com/gpu=true": "NoSchedule", "mlci/pool=quad": "NoSchedule"}
    assert kube["pull_policy"] == ["if-not-present"]
    assert kube["poll_timeout"] == 900  # a GPU node scaled from zero takes minutes


def test_overwrite_limits_match_what_the_train_template_requests(project):
    # The train template's cpu-request/memory-request inputs become KUBERNETES_*_REQUEST; the runner must
    # allow that much or it refuses the overwrite.
    project.write_ci("""\
        include:
          - local: ci_templates/mlci-train.yml
            inputs: {tags: [gpu, multi-gpu], cpu-request: "12", memory-request: 96Gi}
        """)
    files, check = project.render()
    kube = runner_toml(files.files, "quad")["runners"][0]["kubernetes"]
    assert (kube["cpu_request_overwrite_max_allowed"], kube["memory_request_overwrite_max_allowed"]) == ("12", "96Gi")
    assert check.served["quad"] == ["mlci-train"]
    # The spot pool serves no job now: its limits fall back to the template defaults (4 CPUs, 16Gi).
    spot = runner_toml(files.files, "a10g")["runners"][0]["kubernetes"]
    assert (spot["cpu_request_overwrite_max_allowed"], spot["memory_request_overwrite_max_allowed"]) == ("4", "16Gi")


def test_the_job_pod_and_the_namespace_objects_are_valid_kubernetes(rendered):
    files, _, _ = rendered
    for name in ("a10g", "quad"):
        kubernetes_validate.validate(job_pod(runner_toml(files, name)["runners"][0]), K8S_VERSION, strict=True)
    documents = []
    for path in ("kubernetes/runner-namespace.yaml", "kubernetes/cluster-autoscaler-priority-expander.yaml"):
        documents += list(yaml.safe_load_all(files[path]))
    assert [d["kind"] for d in documents] == ["Namespace", "ResourceQuota", "ConfigMap"]
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    quota = documents[1]["spec"]["hard"]["requests.nvidia.com/gpu"]
    assert quota == str(4 * 1 + 4 * 2)  # every kubernetes pool's concurrency x GPUs per job


def test_a_broken_pod_would_fail_the_kubernetes_schema(rendered):
    pod = job_pod(runner_toml(rendered[0], "a10g")["runners"][0])
    pod["spec"]["activeDeadlineSeconds"] = "six hours"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_job_pods_land_on_their_own_pools_nodes_only(rendered):
    """Labels and taints of the EKS node groups match what the Helm values select and tolerate."""
    files, _, _ = rendered
    groups = json.loads(files["eks/pools.json"])["node_groups"]
    effect = {"NO_SCHEDULE": "NoSchedule"}
    for name in ("a10g", "quad"):
        spec = job_pod(runner_toml(files, name)["runners"][0])["spec"]
        tolerated = {(t["key"], t["value"], t["effect"]) for t in spec["tolerations"]}
        for group in groups:
            labels_match = all(group["labels"].get(k) == v for k, v in spec["nodeSelector"].items())
            taints_tolerated = all((t["key"], t["value"], effect[t["effect"]]) in tolerated for t in group["taints"])
            assert (labels_match and taints_tolerated) == (group["pool"] == name), (name, group["name"])


def test_node_groups_scale_to_zero_with_the_autoscaler_tags_they_need(rendered):
    files, _, _ = rendered
    groups = {g["name"]: g for g in json.loads(files["eks/pools.json"])["node_groups"]}
    assert set(groups) == {"mlci-a10g-spot", "mlci-a10g-on-demand", "mlci-quad"}
    spot, fallback = groups["mlci-a10g-spot"], groups["mlci-a10g-on-demand"]
    assert (spot["capacity_type"], fallback["capacity_type"]) == ("SPOT", "ON_DEMAND")
    assert all(g["min_size"] == 0 for g in groups.values())
    assert groups["mlci-quad"]["max_size"] == 2 and groups["mlci-quad"]["ami_type"] == "AL2023_x86_64_NVIDIA"
    tags = groups["mlci-quad"]["autoscaler_tags"]
    prefix = "k8s.io/cluster-autoscaler/node-template"
    assert tags[f"{prefix}/resources/nvidia.com/gpu"] == "4"
    assert tags[f"{prefix}/taint/mlci/pool"] == "quad:NoSchedule"
    assert tags[f"{prefix}/label/mlci/pool"] == "quad"
    assert tags[f"{prefix}/autoscaling-options/scaledownunneededtime"] == "15m0s"  # the pool's idle timeout
    priorities = yaml.safe_load(yaml.safe_load(files["kubernetes/cluster-autoscaler-priority-expander.yaml"])
                                ["data"]["priorities"])
    rank = {pattern: p for p, patterns in priorities.items() for pattern in patterns}
    spot_asg, fallback_asg = "eks-mlci-a10g-spot-1a2b3c4d-5e6f", "eks-mlci-a10g-on-demand-1a2b3c4d-5e6f"

    def priority(asg):
        return max(p for pattern, p in rank.items() if re.match(pattern, asg))

    assert priority(spot_asg) > priority(fallback_asg) > priority("eks-some-other-group-1234")


def test_runners_in_gitlab_carry_the_tags_and_the_max_job_lifetime(rendered):
    files, _, _ = rendered
    pools = {p["name"]: p for p in json.loads(files["gitlab/pools.json"])["pools"]}
    assert pools["a10g"]["tags"] == ["gpu"] and pools["a10g"]["maximum_timeout"] == 6 * 3600
    assert pools["lab"]["token_variable"] == "MLCI_RUNNER_TOKEN_LAB"


def test_docker_pools_get_an_ansible_role_with_gpus_all(rendered):
    files, _, _ = rendered
    config = tomllib.loads(files["ansible/roles/mlci_gpu_runner/files/pools/lab/config.toml"])
    runner = config["runners"][0]
    assert runner["executor"] == "docker" and runner["docker"]["gpus"] == "all"
    assert runner["token"] == "${MLCI_RUNNER_TOKEN}"  # expanded from the service environment, never a literal
    assert config["listen_address"] == "127.0.0.1:9252"
    group_vars = yaml.safe_load(files["ansible/group_vars/mlci_pool_lab.yml"])
    assert group_vars["mlci_gpu_runner_max_job_lifetime_seconds"] == 8 * 3600
    assert group_vars["mlci_gpu_runner_idle_poweroff"] is False  # always on: the host stays up


def test_the_plan_records_limits_and_the_monthly_floor_cost(rendered):
    files, plan, _ = rendered
    assert json.loads(files["plan.json"]) == plan
    assert plan["version"] == 1 and plan["currency"] == "USD"
    lab = next(p for p in plan["pools"] if p["name"] == "lab")
    assert lab["cost"]["floor_monthly"] == round(0.25 * 730, 2)
    assert plan["totals"]["floor_monthly"] == round(0.25 * 730, 2)
    assert plan["totals"]["concurrency"] == 4 + 4 + 1
    assert "floor 182.50 USD" in files["README.md"]


def _hcl(files, module):
    import hcl2

    return {name: hcl2.loads(text) for name, text in files.items() if name.startswith(f"{module}/")
            and name.endswith(".tf")}


def _text(node) -> str:
    return json.dumps(node)


@pytest.mark.parametrize("module", ["eks", "gitlab"])
def test_the_opentofu_modules_parse_and_their_variables_outputs_and_pools_agree(rendered, module):
    files, _, _ = rendered
    parsed = _hcl(files, module)
    assert set(parsed) == {f"{module}/{n}" for n in ("main.tf", "variables.tf", "outputs.tf", "versions.tf")}
    declared = {name.strip('"') for block in parsed[f"{module}/variables.tf"]["variable"] for name in block}
    body = _text([parsed[f"{module}/main.tf"], parsed[f"{module}/outputs.tf"]])
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", body + _text(parsed[f"{module}/variables.tf"])))
    assert used == declared, f"declared but unused: {declared - used}; used but undeclared: {used - declared}"
    outputs = [name.strip('"') for block in parsed[f"{module}/outputs.tf"]["output"] for name in block]
    assert outputs and all(block[name].get("description") for block in parsed[f"{module}/outputs.tf"]["output"]
                           for name in block)
    resources = {f"{kind.strip(chr(34))}.{name.strip(chr(34))}" for block in parsed[f"{module}/main.tf"]["resource"]
                 for kind, named in block.items() for name in named}
    referenced = set(re.findall(r"\b((?:aws|gitlab)_[a-z_]+\.[a-z_]+)", body))
    assert referenced <= resources
    # Every attribute the module reads from pools.json exists on every entry rendered into it.
    spec = json.loads(files[f"{module}/pools.json"])
    entries = spec["node_groups"] if module == "eks" else spec["pools"]
    wanted = set()
    for block in parsed[f"{module}/main.tf"]["resource"]:
        for named in block.values():
            for resource in named.values():
                if resource["for_each"] in ("${local.node_groups}", "${local.pools}"):
                    wanted |= set(re.findall(r"\beach\.value\.([a-z_]+)", _text(resource)))
    wanted |= set(re.findall(r"local\.node_groups\[name\]\.([a-z_]+)", body))
    assert wanted and all(wanted <= set(entry) for entry in entries), wanted
    top = set(re.findall(r"\blocal\.spec\.([a-z_]+)", body))
    assert top <= set(spec)


def test_render_writes_the_folder_and_check_finds_every_drift(project, run_cli):
    project.write_config()
    code, out, err = run_cli("runners", "render")
    assert code == 0, err
    folder = project.root / "infra" / "runners"
    assert (folder / "helm/a10g/values.yaml").is_file() and (folder / "ansible/playbook.yml").is_file()
    assert run_cli("runners", "render", "--check")[0] == 0

    (folder / "eks/main.tf").write_text("# edited by hand\n")
    code, out, err = run_cli("runners", "render", "--check")
    assert code == 1 and "infra/runners/eks/main.tf is not what mlci.yml renders" in err

    # Dropping the docker pool: its Ansible files are left over until the next render removes them.
    project.runners["pools"] = [p for p in project.runners["pools"] if p.get("executor") != "docker"]
    project.write_config()
    code, out, err = run_cli("runners", "render", "--check")
    assert code == 1 and "ansible/group_vars/mlci_pool_lab.yml is not what mlci.yml renders" in err
    code, out, err = run_cli("runners", "render")
    assert code == 0 and "removed" in out
    assert not (folder / "ansible").exists() or not any((folder / "ansible").rglob("*.yml"))
    assert (folder / "eks/main.tf").read_text().startswith("# GPU node groups")
    assert run_cli("runners", "render", "--check")[0] == 0

    artifact = json.loads((project.root / "mlci-out" / "runners-plan.json").read_text())
    assert artifact["version"] == 1 and artifact["stale_files"] == []


def test_render_refuses_a_pipeline_whose_training_job_no_pool_serves(project, run_cli):
    project.write_ci("""\
        include:
          - local: ci_templates/mlci-train.yml
            inputs: {tags: [gpu, h100]}
        """)
    project.write_config()
    code, _, err = run_cli("runners", "render")
    assert code == 1
    assert re.search(r"\.gitlab-ci\.yml:3:\d+: error: job 'mlci-train' needs a runner with tags "
                     r"\[gpu, h100\], but no pool", err), err
    assert "nothing written" in err and not (project.root / "infra").exists()
    plan = json.loads((project.root / "mlci-out" / "runners-plan.json").read_text())
    assert plan["findings"][0]["rule"] == "MLCI030"


def test_without_a_gitlab_url_render_says_where_to_set_it(project, run_cli):
    project.write_config(gitlab={})
    code, _, err = run_cli("runners", "render")
    assert code == 2 and "runners.gitlab-url or gitlab.url" in err


def test_no_pools_means_nothing_to_render(project, run_cli):
    project.write_config(runners={})
    code, out, _ = run_cli("runners", "render")
    assert code == 0 and "declares no pool" in out


def test_without_the_runners_extra_the_command_names_the_install_line(project, run_cli, monkeypatch):
    project.write_config()
    monkeypatch.setitem(sys.modules, "tomli_w", None)  # as if `pip install mlci` without [runners]
    code, _, err = run_cli("runners", "render")
    assert code == 2 and "pip install 'mlci[runners]'" in err


def test_plan_prints_the_table_and_writes_no_folder(project, run_cli):
    project.write_config()
    code, out, _ = run_cli("runners", "plan")
    assert code == 0 and "| quad | gpu, multi-gpu | kubernetes | 2x nvidia-a10g | 0-2 | 4 |" in out
    assert not (project.root / "infra").exists()
    code, out, _ = run_cli("runners", "plan", "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["concurrency"] == 9


def test_a_switched_on_tuning_job_needs_the_pool_too(project):
    # Whichever of mlci-train and mlci-train-tune the `tune` switch turns off can never run, so it asks
    # nothing of any pool (the test above: tune off, only mlci-train).
    project.write_ci("""\
        include:
          - local: ci_templates/mlci-train.yml
            inputs: {tags: [gpu, multi-gpu], tune: true}
        """)
    _, check = project.render()
    assert check.served["quad"] == ["mlci-train-tune"]
