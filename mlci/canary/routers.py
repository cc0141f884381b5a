"""Traffic routers for canary and A/B releases: nginx, KServe and the Gateway API.

Rendering is pure (settings and versions in, text out); applying a rendered
router is the caller's I/O. Every response says which version served it: nginx
and the HTTPRoute add a response header, and the metrics carry the version's
labels through the scrape target.

- nginx: an `http`-level include with one upstream per version and
  `split_clients` on $request_id, so each request is assigned at random in
  the configured proportion. `proxy_pass` names the upstream through a
  variable, which nginx resolves among the configured upstream groups.
- KServe: the environment's InferenceService with the new version's
  storageUri and `canaryTrafficPercent`; KServe keeps the previous revision
  serving the rest. Promotion drops the field (100%), an abort sets it to 0.
- Gateway API: an HTTPRoute with two weighted backendRefs, the environment's
  Service and the canary's own Deployment and Service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from mlci.deploy.k8s import ManifestSpec, dns_name, label_value, object_name, render_manifests

_NGINX_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class Upstream:
    version: str
    address: str  # host:port


def _nginx_string(value: str) -> str:
    # A double-quoted nginx string: backslash and quote escaped; `$` would start a variable.
    if any(ch in value for ch in "\n\r\0$"):
        raise ValueError(f"{value!r} cannot go into an nginx configuration")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _address(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", value):
        raise ValueError(f"{value!r} is not a host:port an nginx upstream can use")
    return value


def _percent(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    if not 0 < float(text) < 100:
        raise ValueError(f"nginx splits between 0.01% and 99.99%, not {value}")
    return f"{text}%"


def render_nginx(*, environment: str, listen: str, header: str, stable: Upstream,
                 canary: Upstream | None = None, percent: float = 0.0) -> str:
    """The include for one environment; without `canary` (or at 0%) every request goes to `stable`."""
    key = _NGINX_NAME.sub("_", environment)
    prefix = f"mlci_{key}"
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", header):
        raise ValueError(f"{header!r} is not an HTTP header name")
    if not re.fullmatch(r"[A-Za-z0-9.:\[\]]+", listen):
        raise ValueError(f"{listen!r} is not an nginx listen address")
    split = canary is not None and percent > 0
    lines = [
        f"# Rendered by mlci canary for environment {key}; mlci rewrites this file on every start, promote and abort.",
        f"upstream {prefix}_stable {{ server {_address(stable.address)}; keepalive 16; }}",
    ]
    if split:
        lines += [
            f"upstream {prefix}_canary {{ server {_address(canary.address)}; keepalive 16; }}",
            f"split_clients \"${{request_id}}\" ${prefix}_arm {{",
            f"    {_percent(percent)} canary;",
            "    * stable;",
            "}",
            f"map ${prefix}_arm ${prefix}_version {{",
            f"    canary {_nginx_string(canary.version)};",
            f"    default {_nginx_string(stable.version)};",
            "}",
        ]
    arm = f"${prefix}_arm" if split else "stable"
    version = f"${prefix}_version" if split else _nginx_string(stable.version)
    lines += [
        "server {",
        f"    listen {listen};",
        "    location / {",
        f"        proxy_pass http://{prefix}_{arm};",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $host;",
        f"        add_header {header} {version} always;",
        f"        add_header {header}-Arm {arm} always;",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def canary_spec(spec: ManifestSpec) -> ManifestSpec:
    """The new version's own Kubernetes objects: the environment's settings under a name of their own."""
    base = object_name(spec)
    settings = {**spec.settings, "name": dns_name(f"{base}-canary")}
    return ManifestSpec(model_name=spec.model_name, version=spec.version, environment=f"{spec.environment}-canary",
                        model_uri=spec.model_uri, settings=settings, tracking_uri=spec.tracking_uri,
                        annotations=spec.annotations)


def render_kserve(spec: ManifestSpec, percent: float | None) -> str:
    """The environment's InferenceService serving `spec.version` to `percent`% (None: to all of it)."""
    text = render_manifests(spec)["inferenceservice.yaml"]
    document = yaml.safe_load(text)
    if percent is not None:
        document["spec"]["predictor"]["canaryTrafficPercent"] = round(percent)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=False, width=2**31 - 1)


def render_httproute(*, stable: ManifestSpec, canary: ManifestSpec | None, percent: float, header: str,
                     gateway: Mapping[str, Any], hostnames: list[str], stable_version: str) -> str:
    """An HTTPRoute splitting the environment's Service and the canary's by weight (percent of 100)."""
    settings = stable.settings
    port = int(settings["service-port"])
    name = object_name(stable)
    parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"]}
    if gateway.get("namespace"):
        parent["namespace"] = gateway["namespace"]
    if gateway.get("section-name"):
        parent["sectionName"] = gateway["section-name"]

    def backend(service: str, weight: int, version: str) -> dict[str, Any]:
        return {"name": service, "port": port, "weight": weight,
                "filters": [{"type": "ResponseHeaderModifier",
                             "responseHeaderModifier": {"set": [{"name": header, "value": version}]}}]}

    weight = round(percent) if canary is not None else 0
    backends = [backend(name, 100 - weight, stable_version)]
    if canary is not None and weight > 0:
        backends.append(backend(object_name(canary), weight, canary.version))
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/managed-by": "mlci",
                                                         "mlci/environment": label_value(stable.environment)}}
    if settings.get("namespace"):
        metadata["namespace"] = settings["namespace"]
    document = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": metadata,
                "spec": {"parentRefs": [parent], **({"hostnames": list(hostnames)} if hostnames else {}),
                         "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                    "backendRefs": backends}]}}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=False, width=2**31 - 1)

