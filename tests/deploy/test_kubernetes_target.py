"""Target kubernetes through `mlci deploy`: manifests as artifacts, kubectl apply + rollout when a context exists.

There is no cluster here, so kubectl is a small script that records its
arguments and answers like kubectl would (it is the one stand-in; the
registry, the config and the manifests are real).
"""

import json
import stat
import textwrap

import kubernetes_validate
import yaml

from tests.deploy.conftest import MODEL

K8S_DEPLOY = """\
deploy:
  environments:
    - name: staging
      target: kubernetes
      url: https://staging.models.example
      kubernetes:
        image: registry.example/demo-serving:1.4
        namespace: ml-staging
        resources: {{gpu: 1}}
        apply: {apply}
        kubectl: {kubectl}
    - name: production
      target: command
      command: "true"
"""


def fake_kubectl(tmp_path, *, context=True, apply_exit=0, rollout_exit=0):
    log = tmp_path / "kubectl.log"
    no_context = 'echo "error: current-context is not set" >&2; exit 1'
    script = tmp_path / "kubectl"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" >> {log}
        case "$*" in
          *current-context*) {'echo kind-ci; exit 0' if context else no_context} ;;
          *" apply "*) echo "deployment.apps/demo-staging configured"; exit {apply_exit} ;;
          *" rollout "*) echo "waiting for rollout"; exit {rollout_exit} ;;
        esac
        exit 0
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def deploy(run_cli, project, version="1"):
    return run_cli(*project.cli("deploy", "--to", "staging", "--version", version))


def manifests(project):
    return sorted(p.name for p in (project.out / "k8s" / "staging").glob("*.yaml"))


def test_apply_never_writes_valid_manifests_as_artifacts_and_promotes(run_cli, project, tmp_path):
    project.write_config(K8S_DEPLOY.format(apply="never", kubectl=tmp_path / "absent"))
    code, _, err = deploy(run_cli, project)
    assert code == 0, err
    assert manifests(project) == ["deployment.yaml", "hpa.yaml", "service.yaml"]
    for path in (project.out / "k8s" / "staging").glob("*.yaml"):
        kubernetes_validate.validate(yaml.safe_load(path.read_text()), "1.30.0", strict=True)
    deployment = yaml.safe_load((project.out / "k8s" / "staging" / "deployment.yaml").read_text())
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLCI_MODEL_URI"] == f"models:/{MODEL}/1"
    assert project.marker("staging") == "1"
    log = json.loads((project.out / "deploy-staging.json").read_text())
    assert log["url"] == "https://staging.models.example"
    assert log["details"]["target-result"]["applied"] is False


def test_without_a_kubectl_context_the_manifests_become_artifacts_and_it_says_so(run_cli, project, tmp_path):
    kubectl, calls = fake_kubectl(tmp_path, context=False)
    project.write_config(K8S_DEPLOY.format(apply="auto", kubectl=kubectl))
    code, _, err = deploy(run_cli, project)
    assert code == 0, err
    assert "kubectl has no current context: wrote the manifests to" in err
    assert " apply " not in calls.read_text()
    assert manifests(project) == ["deployment.yaml", "hpa.yaml", "service.yaml"]


def test_with_a_context_it_applies_every_manifest_and_waits_for_the_rollout(run_cli, project, tmp_path):
    kubectl, calls = fake_kubectl(tmp_path)
    project.write_config(K8S_DEPLOY.format(apply="auto", kubectl=kubectl))
    code, out, err = deploy(run_cli, project)
    assert code == 0, err
    lines = calls.read_text().splitlines()
    apply = next(line for line in lines if " apply " in line)
    assert apply.startswith("--context kind-ci apply")
    for name in ("deployment.yaml", "service.yaml", "hpa.yaml"):
        assert f"k8s/staging/{name}" in apply
    rollout = next(line for line in lines if " rollout " in line)
    assert "deployment/demo-staging -n ml-staging --timeout=300s" in rollout
    assert "| deployment.apps/demo-staging configured" in out
    assert project.marker("staging") == "1"


def test_failed_apply_or_rollout_leaves_the_marker_alone(run_cli, project, tmp_path):
    kubectl, _ = fake_kubectl(tmp_path)
    project.write_config(K8S_DEPLOY.format(apply="auto", kubectl=kubectl))
    assert deploy(run_cli, project, "1")[0] == 0

    broken, _ = fake_kubectl(tmp_path, apply_exit=1)
    project.write_config(K8S_DEPLOY.format(apply="auto", kubectl=broken))
    code, _, err = deploy(run_cli, project, "2")
    assert code == 1 and "kubectl apply for 'staging' failed with code 1" in err
    assert project.marker("staging") == "1"

    stuck, _ = fake_kubectl(tmp_path, rollout_exit=1)
    project.write_config(K8S_DEPLOY.format(apply="auto", kubectl=stuck))
    code, _, err = deploy(run_cli, project, "2")
    assert code == 1 and "did not become ready within 300 s" in err
    assert project.marker("staging") == "1"


def test_apply_always_fails_without_kubectl(run_cli, project, tmp_path):
    project.write_config(K8S_DEPLOY.format(apply="always", kubectl=tmp_path / "no-such-kubectl"))
    code, _, err = deploy(run_cli, project)
    assert code == 1 and "is not on PATH" in err
    assert project.marker("staging") is None
