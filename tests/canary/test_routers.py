"""The routers mlci renders: nginx accepted by nginx itself, KServe and Gateway API valid against their CRDs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlci.canary.routers import Upstream, canary_spec, render_httproute, render_kserve, render_nginx
from mlci.deploy.k8s import ManifestSpec
from tests.deploy.test_k8s_manifests import ADVERSARIAL, settings
from tests.deploy.test_k8s_monitoring import INFERENCE_SERVICE, strict

HTTPROUTE = strict(json.loads((Path(__file__).parent / "crds" / "httproute.gateway.networking.k8s.io.v1.json")
                              .read_text(encoding="utf-8")))
# One validator per schema: jsonschema.validate would check the (large) schema itself on every call.
ISVC_VALIDATOR = jsonschema.validators.validator_for(INFERENCE_SERVICE)(INFERENCE_SERVICE)
ROUTE_VALIDATOR = jsonschema.validators.validator_for(HTTPROUTE)(HTTPROUTE)
GATEWAY = {"name": "public", "namespace": "gateways", "section-name": "https"}


def spec(version="7", environment="production", model="tumor-classifier", **overrides) -> ManifestSpec:
    return ManifestSpec(model_name=model, version=version, environment=environment,
                        model_uri=f"models:/{model}/{version}", settings=settings(**overrides))


def nginx_accepts(tmp_path: Path, include: str) -> subprocess.CompletedProcess:
    from tests.servers.nginx import binary

    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "router.conf").write_text(include, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ include {tmp_path}/router.conf; }}\n", encoding="utf-8")
    return subprocess.run([binary(), "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                           "-e", str(tmp_path / "error.log")], capture_output=True, text=True)


def test_nginx_split_is_accepted_by_nginx_and_names_the_version(tmp_path):
    text = render_nginx(environment="production", listen="127.0.0.1:8080", header="X-Model-Version",
                        stable=Upstream("6", "127.0.0.1:9001"), canary=Upstream("7", "127.0.0.1:9002"),
                        percent=12.5)
    done = nginx_accepts(tmp_path, text)
    assert done.returncode == 0, done.stderr
    assert "12.5% canary;" in text and "* stable;" in text
    assert 'canary "7";' in text and 'default "6";' in text
    assert "add_header X-Model-Version $mlci_production_version always;" in text


def test_nginx_without_a_canary_sends_everything_to_the_stable_version(tmp_path):
    text = render_nginx(environment="prod-eu_1", listen="127.0.0.1:8080", header="X-Model-Version",
                        stable=Upstream("1.2.0+build", "127.0.0.1:9001"))
    assert nginx_accepts(tmp_path, text).returncode == 0
    assert "split_clients" not in text and 'add_header X-Model-Version "1.2.0+build" always;' in text


@pytest.mark.parametrize("bad", [
    {"stable": Upstream("1", "127.0.0.1:9001; include /etc/passwd")},
    {"stable": Upstream("1$host", "127.0.0.1:9001")},
    {"stable": Upstream('1"; }', "127.0.0.1:9001"), "canary": Upstream("2\n}", "127.0.0.1:9002"), "percent": 5},
    {"listen": "0.0.0.0:80; ssl"},
    {"header": "X-Version: evil"},
    {"canary": Upstream("2", "127.0.0.1:9002"), "percent": 100},
])
def test_nginx_rendering_refuses_what_would_change_the_configuration(bad):
    arguments = {"environment": "production", "listen": "127.0.0.1:8080", "header": "X-Model-Version",
                 "stable": Upstream("1", "127.0.0.1:9001"), **bad}
    try:
        text = render_nginx(**arguments)
    except ValueError:
        return
    # A quote is escaped inside the nginx string: it stays one value.
    assert '\\"' in text and "\n}\"" not in text


def test_kserve_canary_traffic_percent_and_promotion():
    kserve = {"enabled": True, "storage-uri": "s3://models/{model}/{version}"}
    canary = yaml.safe_load(render_kserve(spec(kserve=kserve), 10))
    ISVC_VALIDATOR.validate(canary)
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert canary["spec"]["predictor"]["model"]["storageUri"] == "s3://models/tumor-classifier/7"
    aborted = yaml.safe_load(render_kserve(spec(kserve=kserve), 0))
    assert aborted["spec"]["predictor"]["canaryTrafficPercent"] == 0, "0 sends all traffic to the last good revision"
    promoted = yaml.safe_load(render_kserve(spec(kserve=kserve), None))
    ISVC_VALIDATOR.validate(promoted)
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]


def test_gateway_api_httproute_weights_and_version_headers():
    stable = spec(version="6", namespace="models")
    canary = canary_spec(spec(version="7", namespace="models"))
    route = yaml.safe_load(render_httproute(stable=stable, canary=canary, percent=20, header="X-Model-Version",
                                            gateway=GATEWAY, hostnames=["models.example.com"], stable_version="6"))
    ROUTE_VALIDATOR.validate(route)
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in backends] == [("tumor-classifier-production", 80),
                                                           ("tumor-classifier-production-canary", 20)]
    headers = [b["filters"][0]["responseHeaderModifier"]["set"][0] for b in backends]
    assert headers == [{"name": "X-Model-Version", "value": "6"}, {"name": "X-Model-Version", "value": "7"}]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "public", "namespace": "gateways", "sectionName": "https"}]
    back = yaml.safe_load(render_httproute(stable=stable, canary=None, percent=0, header="X-Model-Version",
                                           gateway={"name": "public"}, hostnames=[], stable_version="6"))
    ROUTE_VALIDATOR.validate(back)
    assert [(b["name"], b["weight"]) for b in back["spec"]["rules"][0]["backendRefs"]] == [
        ("tumor-classifier-production", 100)]


def test_a_typo_in_the_httproute_would_fail_the_crd_check():
    route = yaml.safe_load(render_httproute(stable=spec(), canary=None, percent=0, header="X-Model-Version",
                                            gateway={"name": "public"}, hostnames=[], stable_version="7"))
    route["spec"]["rules"][0]["backendRefs"][0]["wieght"] = 3
    with pytest.raises(jsonschema.ValidationError):
        ROUTE_VALIDATOR.validate(route)


@pytest.mark.parametrize("evil", ADVERSARIAL)
def test_adversarial_names_stay_single_values_in_both_kubernetes_modes(evil):
    model = f"m{evil}"
    kserve = {"enabled": True, "storage-uri": "s3://models/{model}/{version}"}
    isvc_text = render_kserve(spec(model=model, kserve=kserve), 10)
    documents = list(yaml.safe_load_all(isvc_text))
    assert len(documents) == 1
    ISVC_VALIDATOR.validate(documents[0])
    assert documents[0]["metadata"]["annotations"]["mlci/model-name"] == model
    stable, canary = spec(model=model, version="6"), canary_spec(spec(model=model))
    text = render_httproute(stable=stable, canary=canary, percent=10, header="X-Model-Version",
                            gateway={"name": "public"}, hostnames=[], stable_version="6")
    documents = list(yaml.safe_load_all(text))
    assert len(documents) == 1
    ROUTE_VALIDATOR.validate(documents[0])
    names = [b["name"] for b in documents[0]["spec"]["rules"][0]["backendRefs"]]
    assert len(set(names)) == 2 and all(len(name) <= 63 for name in names)
