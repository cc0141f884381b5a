"""Kubernetes manifests for monitoring: a metrics port, a ServiceMonitor or scrape annotations, and a KServe
InferenceService on the MLServer runtime, validated against the published CRD schemas (tests/deploy/crds)."""

import gzip
import json
from pathlib import Path

import jsonschema
import pytest

from tests.deploy.test_k8s_manifests import ADVERSARIAL, container, render, single_documents, validate

CRDS = Path(__file__).parent / "crds"


def strict(schema):
    """The API server prunes unknown fields; a test should reject them instead, so typos surface."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schema(name: str) -> dict:
    path = CRDS / name
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return strict(json.loads(raw))


SERVICE_MONITOR = crd_schema("servicemonitor.monitoring.coreos.com.v1.json")
INFERENCE_SERVICE = crd_schema("inferenceservice.serving.kserve.io.v1beta1.json.gz")


def env_of(docs) -> dict:
    return {item["name"]: item["value"] for item in container(docs)["env"]}


def test_mlserver_with_a_service_monitor_exposes_labelled_metrics():
    docs = single_documents(render(server="mlserver", metrics={"enabled": True, "service-monitor-labels":
                                                               {"release": "prometheus"}}))
    monitor = docs.pop("servicemonitor.yaml")
    validate(docs)
    jsonschema.validate(monitor, SERVICE_MONITOR)
    ports = {port["name"]: port["containerPort"] for port in container(docs)["ports"]}
    assert ports == {"http": 8080, "metrics": 8082}
    assert {port["name"] for port in docs["service.yaml"]["spec"]["ports"]} == {"http", "metrics"}
    assert container(docs)["command"] == ["mlserver", "start", "."]
    env = env_of(docs)
    assert env["MLSERVER_MODEL_URI"] == "models:/tumor-classifier/7"
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == "mlserver_mlflow.MLflowRuntime"
    assert env["MLSERVER_METRICS_PORT"] == "8082" and env["MLSERVER_HTTP_PORT"] == "8080"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"] == docs["service.yaml"]["spec"]["selector"]
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics"
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"model_name", "model_version", "environment"}
    pod = docs["deployment.yaml"]["spec"]["template"]["metadata"]
    assert pod["annotations"]["mlci/model-version"] == "7", "the relabelling source is on the pod"


def test_annotation_scraping_needs_no_operator():
    docs = single_documents(render(server="mlserver", metrics={"enabled": True, "scrape": "annotations"}))
    assert "servicemonitor.yaml" not in docs
    validate(docs)
    annotations = docs["deployment.yaml"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "8082"


def test_without_metrics_nothing_changes():
    docs = single_documents(render())
    assert set(docs) == {"deployment.yaml", "service.yaml", "hpa.yaml"}
    assert [p["name"] for p in container(docs)["ports"]] == ["http"]
    assert container(docs)["command"][:3] == ["mlflow", "models", "serve"]


def test_kserve_inference_service_on_the_mlserver_runtime():
    docs = single_documents(render(kserve={"enabled": True, "storage-uri": "s3://models/{model}/{version}",
                                           "service-account": "models-reader"}))
    assert set(docs) == {"inferenceservice.yaml"}, "KServe owns the Deployment, Service and autoscaling"
    service = docs["inferenceservice.yaml"]
    jsonschema.validate(service, INFERENCE_SERVICE)
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"} and model["runtime"] == "kserve-mlserver"
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == "s3://models/tumor-classifier/7"
    assert service["metadata"]["annotations"]["serving.kserve.io/enable-prometheus-scraping"] == "true"
    assert service["metadata"]["labels"]["mlci/model-version"] == "7"


def test_kserve_without_a_storage_uri_is_refused():
    with pytest.raises(ValueError, match="storage-uri"):
        render(kserve={"enabled": True})


def test_a_typo_in_a_rendered_field_would_fail_the_crd_check():
    docs = single_documents(render(server="mlserver", metrics={"enabled": True}))
    broken = docs["servicemonitor.yaml"]
    broken["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SERVICE_MONITOR)


@pytest.mark.parametrize("value", ADVERSARIAL)
def test_hostile_values_stay_values_in_the_monitoring_manifests(value):
    docs = single_documents(render(server="mlserver", labels={"owner": value},
                                   metrics={"enabled": True, "service-monitor-labels": {"team": value}}))
    assert docs["servicemonitor.yaml"]["metadata"]["labels"]["team"] == value
    assert docs["deployment.yaml"]["metadata"]["labels"]["owner"] == value
