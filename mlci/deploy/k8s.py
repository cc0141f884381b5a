"""Kubernetes manifests for a pinned model version: Deployment, Service, HorizontalPodAutoscaler.

Pure rendering: settings in, {file name: YAML text} out. The Jinja2 templates
hold only structure; every configured value is emitted by `yaml_value`, which
writes double-quoted strings (`yaml_block` lays collections out as block
YAML built from the same scalars), so a value with newlines, quotes, `---`,
anchors or tags stays one value.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

MANIFEST_FILES = ("deployment.yaml", "service.yaml", "hpa.yaml", "servicemonitor.yaml")
KSERVE_FILES = ("inferenceservice.yaml",)
MLFLOW_COMMAND = ["mlflow", "models", "serve", "-m", "$(MLCI_MODEL_URI)", "-h", "0.0.0.0", "-p", "$(MLCI_SERVE_PORT)",
                  "--env-manager", "local"]
MLSERVER_COMMAND = ["mlserver", "start", "."]
_DNS_INVALID = re.compile(r"[^a-z0-9]+")  # runs of anything else, dashes included, become one dash
_LABEL_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_NAME = 63  # a Service name is a DNS-1035 label


@dataclass(frozen=True)
class ManifestSpec:
    model_name: str
    version: str
    environment: str
    model_uri: str
    settings: Mapping[str, Any]  # the environment's `kubernetes` block with defaults filled in
    tracking_uri: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)  # extra, e.g. the pipeline URL


def yaml_value(value: Any) -> str:
    """One YAML value on one line that parses back to exactly `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} into a manifest")
        return json.dumps(value)
    if isinstance(value, str):
        # The emitter escapes line breaks and non-printable characters; an
        # unbounded width keeps the scalar on one line.
        text = yaml.dump(value, Dumper=yaml.SafeDumper, default_style='"', width=2**31 - 1, allow_unicode=False)
        return text.rstrip("\n")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{yaml_value(str(k))}: {yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} into a manifest")


# Keys that YAML 1.1 would read as booleans or null must stay quoted.
_PLAIN_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]*$")
_YAML11_SPECIAL = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _key(key: Any) -> str:
    text = str(key)
    return text if _PLAIN_KEY.match(text) and text.lower() not in _YAML11_SPECIAL else yaml_value(text)


def yaml_block(value: Any, indent: int) -> str:
    """`value` as a block collection indented by `indent`, starting on a new line.

    Used right after `key:` in a template. Scalars and empty collections stay on
    the key's line; every scalar is written by `yaml_value`.
    """
    pad = " " * indent
    if isinstance(value, Mapping) and value:
        lines = []
        for key, item in value.items():
            if isinstance(item, (Mapping, list, tuple)) and item:
                lines.append(f"{pad}{_key(key)}:{yaml_block(item, indent + 2)}")
            else:
                lines.append(f"{pad}{_key(key)}: {yaml_value(item)}")
        return "\n" + "\n".join(lines)
    if isinstance(value, (list, tuple)) and value:
        lines = []
        for item in value:
            if isinstance(item, (Mapping, list, tuple)) and item:
                nested = yaml_block(item, indent + 2).lstrip("\n")
                lines.append(f"{pad}- {nested[indent + 2:]}")
            else:
                lines.append(f"{pad}- {yaml_value(item)}")
        return "\n" + "\n".join(lines)
    return " " + yaml_value(value)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{text[: limit - 9].rstrip('-_.')}-{digest}"


def dns_name(text: str) -> str:
    """A DNS-1035 label (lowercase, digits, '-', starts with a letter, at most 63 characters)."""
    name = _DNS_INVALID.sub("-", text.lower()).strip("-") or "model"
    if not name[0].isalpha():
        name = f"m-{name}"
    return _shorten(name, _MAX_NAME).strip("-")


def label_value(text: str) -> str:
    """A valid label value: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends."""
    value = _LABEL_INVALID.sub("-", text)
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    return re.sub(r"[^A-Za-z0-9]+$", "", _shorten(value, 63))


def _quantity(value: Any) -> Any:
    # Kubernetes quantities are strings ("500m", "2Gi") or plain numbers.
    return value if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)) else str(value)


def _is_remote(uri: str | None) -> bool:
    return bool(uri) and uri.split(":", 1)[0] in ("http", "https", "databricks")


def render_context(spec: ManifestSpec) -> dict[str, Any]:
    s = spec.settings
    name = s.get("name") or dns_name(f"{spec.model_name}-{spec.environment}")
    selector = {"app.kubernetes.io/name": label_value(spec.model_name) or "model", "app.kubernetes.io/instance": name}
    labels = {
        **{str(k): str(v) for k, v in (s.get("labels") or {}).items()},
        **selector,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "mlci",
        "mlci/environment": label_value(spec.environment),
        "mlci/model-version": label_value(spec.version),
    }
    annotations = {
        **{str(k): str(v) for k, v in spec.annotations.items()},
        "mlci/model-name": spec.model_name,
        "mlci/model-version": spec.version,
        "mlci/model-uri": spec.model_uri,
        "mlci/environment": spec.environment,
    }
    container_port = int(s["container-port"])
    pinned = {
        "MLCI_MODEL_URI": spec.model_uri,
        "MLCI_MODEL_NAME": spec.model_name,
        "MLCI_MODEL_VERSION": spec.version,
        "MLCI_ENVIRONMENT": spec.environment,
        "MLCI_SERVE_PORT": str(container_port),
    }
    if _is_remote(spec.tracking_uri):
        # Manifests are artifacts anyone in the project reads: credentials come from env-from-secret
        # (MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN), never from the URI.
        from mlci.redact import credential_free_url

        pinned["MLFLOW_TRACKING_URI"] = credential_free_url(str(spec.tracking_uri))
    metrics = s.get("metrics") or {}
    metrics_on = bool(metrics.get("enabled"))
    server = s.get("server", "mlflow")
    command = list(s.get("command") or [])
    if server == "mlserver":
        # MLServer reads its server and single-model settings from MLSERVER_* variables.
        pinned.update({
            "MLSERVER_HOST": "0.0.0.0",
            "MLSERVER_HTTP_PORT": str(container_port),
            "MLSERVER_METRICS_PORT": str(int(metrics.get("port", 8082))),
            "MLSERVER_MODEL_NAME": spec.model_name,
            "MLSERVER_MODEL_VERSION": spec.version,
            "MLSERVER_MODEL_IMPLEMENTATION": "mlserver_mlflow.MLflowRuntime",
            "MLSERVER_MODEL_URI": spec.model_uri,
        })
        if command == MLFLOW_COMMAND:
            command = list(MLSERVER_COMMAND)
    pod_annotations = dict(annotations)
    if metrics_on and metrics.get("scrape") == "annotations":
        pod_annotations.update({"prometheus.io/scrape": "true", "prometheus.io/port": str(int(metrics["port"])),
                                "prometheus.io/path": metrics.get("path", "/metrics")})
    # mlci's pinned values win over user env with the same name: the pod must serve this version.
    env_values = {**{str(k): str(v) for k, v in (s.get("env") or {}).items()}, **pinned}
    resources_cfg = s["resources"]
    requests = {"cpu": _quantity(resources_cfg["cpu-request"]), "memory": _quantity(resources_cfg["memory-request"])}
    limits = {"cpu": _quantity(resources_cfg["cpu-limit"]), "memory": _quantity(resources_cfg["memory-limit"])}
    if int(resources_cfg.get("gpu") or 0) > 0:
        # Extended resources cannot be overcommitted: request and limit must match.
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = int(resources_cfg["gpu"])
    scaling = s["autoscaling"]
    probes = s["probes"]
    return {
        "name": name,
        "namespace": s.get("namespace"),
        "labels": labels,
        "annotations": annotations,
        "selector": selector,
        "replicas": int(s["replicas"]),
        "image": s["image"],
        "command": command,
        "pod_annotations": pod_annotations,
        "metrics": {"port": int(metrics.get("port", 8082)), "path": metrics.get("path", "/metrics"),
                    "interval": metrics.get("interval", "30s"), "scrape": metrics.get("scrape", "service-monitor"),
                    "monitor_labels": {**labels, **{str(k): str(v) for k, v in
                                                    (metrics.get("service-monitor-labels") or {}).items()}}}
        if metrics_on else None,
        "kserve": _kserve_context(spec, s) if (s.get("kserve") or {}).get("enabled") else None,
        # KServe's runtime configures MLServer itself (model path /mnt/models).
        "kserve_env": [{"name": key, "value": value} for key, value in env_values.items()
                       if not key.startswith("MLSERVER_")],
        "container_port": container_port,
        "service_port": int(s["service-port"]),
        "service_type": s["service-type"],
        "env": [{"name": key, "value": value} for key, value in env_values.items()],
        "env_from_secret": s.get("env-from-secret"),
        "image_pull_secret": s.get("image-pull-secret"),
        "node_selector": {str(k): str(v) for k, v in (s.get("node-selector") or {}).items()},
        "tolerations": list(s.get("tolerations") or []),
        "resources": {"requests": requests, "limits": limits},
        "autoscaling": {
            "min_replicas": int(scaling["min-replicas"]),
            "max_replicas": int(scaling["max-replicas"]),
            "target_cpu": int(scaling["target-cpu-utilization"]),
        }
        if scaling["enabled"]
        else None,
        "probes": {
            "path": probes["path"],
            "readiness_delay": int(probes["readiness-initial-delay"]),
            "liveness_delay": int(probes["liveness-initial-delay"]),
            "period": int(probes["period"]),
            "timeout": int(probes["timeout"]),
            "failure_threshold": int(probes["failure-threshold"]),
        },
    }


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=False
    )
    env.filters["yaml"] = yaml_value
    env.filters["block"] = yaml_block
    return env


def _template(file_name: str):
    text = resources.files("mlci.deploy").joinpath("templates", f"{file_name}.j2").read_text(encoding="utf-8")
    return _environment().from_string(text)


def _kserve_context(spec: ManifestSpec, s: Mapping[str, Any]) -> dict[str, Any]:
    kserve = s["kserve"]
    if not kserve.get("storage-uri"):
        raise ValueError("kubernetes.kserve.storage-uri is required when kserve.enabled is true")
    storage = kserve["storage-uri"].replace("{version}", spec.version).replace("{model}", spec.model_name)
    return {
        "storage_uri": storage,
        "runtime": kserve.get("runtime", "kserve-mlserver"),
        "protocol": kserve.get("protocol-version", "v2"),
        "service_account": kserve.get("service-account"),
        "min_replicas": int(kserve.get("min-replicas", 1)),
        "max_replicas": int(kserve.get("max-replicas", 3)),
    }


def render_manifests(spec: ManifestSpec) -> dict[str, str]:
    """{'deployment.yaml': ..., 'service.yaml': ..., 'hpa.yaml': ...}; no hpa.yaml when autoscaling is off,
    servicemonitor.yaml with metrics scraped through the Prometheus Operator, and only
    inferenceservice.yaml for KServe."""
    context = render_context(spec)
    rendered = {}
    files = KSERVE_FILES if context["kserve"] else MANIFEST_FILES
    for file_name in files:
        if file_name == "hpa.yaml" and not context["autoscaling"]:
            continue
        if file_name == "servicemonitor.yaml" and not (context["metrics"] and
                                                       context["metrics"]["scrape"] == "service-monitor"):
            continue
        rendered[file_name] = _template(file_name).render(**context).strip() + "\n"
    return rendered


def object_name(spec: ManifestSpec) -> str:
    return render_context(spec)["name"]
