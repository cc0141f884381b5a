"""Kubernetes manifests: valid against the Kubernetes JSON schemas, and unbreakable by configured values."""

import re

import kubernetes_validate
import pytest
import yaml

from mlci.deploy.k8s import ManifestSpec, dns_name, label_value, render_manifests, yaml_value
from mlci.deploy.settings import environment_schema, with_defaults

K8S_VERSION = "1.30.0"

# Each of these once broke a naive template: new keys, new documents, anchors,
# tags, comments, GitLab interpolation, control and astral characters.
ADVERSARIAL = [
    "x\n---\napiVersion: v1\nkind: Secret",
    "a: b\nc: d",
    "\"quoted\" and 'single'",
    "&anchor *alias !!python/object/apply:os.system ['id']",
    "# not a comment",
    "${CI_JOB_TOKEN} $[[ inputs.image ]] {{ jinja }} {% raw %}",
    "tab\tcr\rnul-free \x7f\x85 \u2028 é 😀",
    "",
    " leading and trailing ",
    "- list-looking",
    "yes",
    "0o17",
    "~",
]


def settings(**overrides):
    kubernetes = {"image": "registry.example/model:1", **overrides}
    return with_defaults(environment_schema(), {"name": "staging", "kubernetes": kubernetes})["kubernetes"]


def render(model="tumor-classifier", version="7", environment="staging", tracking_uri=None, **overrides):
    spec = ManifestSpec(
        model_name=model, version=version, environment=environment,
        model_uri=f"models:/{model}/{version}", settings=settings(**overrides), tracking_uri=tracking_uri,
    )
    return {name: yaml.safe_load_all(text) for name, text in render_manifests(spec).items()}


def single_documents(rendered):
    docs = {}
    for name, stream in rendered.items():
        items = list(stream)
        assert len(items) == 1, f"{name} rendered {len(items)} YAML documents"
        docs[name] = items[0]
    return docs


def validate(docs):
    for doc in docs.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def container(docs):
    return docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]


def test_defaults_render_a_valid_deployment_service_and_hpa():
    docs = single_documents(render())
    validate(docs)
    deployment, service, hpa = docs["deployment.yaml"], docs["service.yaml"], docs["hpa.yaml"]
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == "tumor-classifier-staging"
    # The HPA owns the replica count; a fixed count would fight it on every apply.
    assert "replicas" not in deployment["spec"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    c = container(docs)
    env = {item["name"]: item["value"] for item in c["env"]}
    assert env["MLCI_MODEL_URI"] == "models:/tumor-classifier/7"  # pinned, never @alias
    assert "$(MLCI_MODEL_URI)" in c["command"] and c["ports"][0]["containerPort"] == 8080
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/ping", "port": "http"}
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    # The selector must not change between versions (it is immutable in a Deployment).
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert "mlci/model-version" not in service["spec"]["selector"]


def test_gpu_resources_fixed_replicas_namespace_and_node_placement():
    docs = single_documents(render(
        namespace="ml-prod", replicas=3, autoscaling={"enabled": False},
        resources={"gpu": 2, "cpu-request": 1, "memory-limit": "16Gi"},
        **{"node-selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
           "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
           "env-from-secret": "mlflow-credentials", "image-pull-secret": "regcred", "service-type": "LoadBalancer"},
    ))
    assert "hpa.yaml" not in docs
    validate(docs)
    deployment = docs["deployment.yaml"]
    assert deployment["spec"]["replicas"] == 3
    assert {d["metadata"]["namespace"] for d in docs.values()} == {"ml-prod"}
    resources = container(docs)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == 2
    assert resources["requests"]["cpu"] == 1 and resources["limits"]["memory"] == "16Gi"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert container(docs)["envFrom"] == [{"secretRef": {"name": "mlflow-credentials"}}]


def test_remote_tracking_uri_reaches_the_pod_but_a_local_sqlite_path_does_not():
    remote = {e["name"]: e["value"] for e in container(single_documents(render(tracking_uri="https://mlflow.corp")))["env"]}
    assert remote["MLFLOW_TRACKING_URI"] == "https://mlflow.corp"
    local = {e["name"] for e in container(single_documents(render(tracking_uri="sqlite:///.mlci/mlflow.db")))["env"]}
    assert "MLFLOW_TRACKING_URI" not in local


def test_user_env_cannot_override_the_pinned_model_uri():
    docs = single_documents(render(env={"MLCI_MODEL_URI": "models:/other@champion", "LOG_LEVEL": "debug"}))
    env = {e["name"]: e["value"] for e in container(docs)["env"]}
    assert env["MLCI_MODEL_URI"] == "models:/tumor-classifier/7" and env["LOG_LEVEL"] == "debug"


@pytest.mark.parametrize("evil", ADVERSARIAL)
def test_adversarial_values_stay_single_values(evil):
    docs = single_documents(render(
        model=f"model {evil}", version=evil or "1", image=evil or "img",
        env={"EVIL": evil, evil or "K": "v"}, labels={"team": evil},
        **{"node-selector": {"pool": evil}, "env-from-secret": evil or "s"},
    ))
    assert set(docs) == {"deployment.yaml", "service.yaml", "hpa.yaml"}
    assert [d["kind"] for d in docs.values()] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    c = container(docs)
    assert c["image"] == (evil or "img")
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["EVIL"] == evil
    assert env["MLCI_MODEL_URI"] == f"models:/model {evil}/{evil or '1'}"
    meta = docs["deployment.yaml"]["metadata"]
    assert meta["annotations"]["mlci/model-name"] == f"model {evil}"
    assert meta["labels"]["team"] == evil
    assert docs["deployment.yaml"]["spec"]["template"]["spec"]["nodeSelector"] == {"pool": evil}
    # Names and label values derived from user text are made valid, not passed through.
    assert meta["name"] == dns_name(f"model {evil}-staging")
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", meta["name"])
    assert all(re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]?", v) for v in meta["labels"].values()
               if v != evil)
    validate({k: v for k, v in docs.items() if k != "deployment.yaml"})


@pytest.mark.parametrize("value", [*ADVERSARIAL, 0, -3, 2.5, True, False, None, [1, "a\nb"], {"k: v": ["- x"]}])
def test_yaml_value_round_trips(value):
    assert yaml.safe_load(f"key: {yaml_value(value)}") == {"key": value}


def test_dns_names_and_label_values_are_valid_for_kubernetes():
    assert dns_name("Tumor Classifier_v2-staging") == "tumor-classifier-v2-staging"
    assert dns_name("a -- b") == "a-b"
    assert dns_name("123-model") == "m-123-model"
    long = dns_name("x" * 100 + "-production")
    assert len(long) <= 63 and long != dns_name("x" * 100 + "-staging")
    assert label_value("-weird value!-") == "weird-value"
    assert len(label_value("v" * 80)) <= 63


def test_the_documented_deploy_config_is_valid_and_renders(tmp_path, repo_root):
    from mlci.config import load_effective
    from mlci.deploy.settings import load_settings

    doc = (repo_root / "docs" / "deploy.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    config_file = tmp_path / "mlci.yml"
    config_file.write_text("model:\n  name: tumor-classifier\n" + example, encoding="utf-8")
    settings = load_settings(load_effective(config_file, env={}))
    production = settings.get("production")
    assert settings.names == ("staging", "production")
    assert production.kubernetes["apply"] == "always" and production.kubernetes["resources"]["gpu"] == 1
    spec = ManifestSpec("tumor-classifier", "3", "production", "models:/tumor-classifier/3", production.kubernetes)
    for text in render_manifests(spec).values():
        kubernetes_validate.validate(yaml.safe_load(text), K8S_VERSION, strict=True)
