"""The rendered templates run under gitlab-ci-local (shell mode) with an adversarial value in every
string input a job reads at run time: no value becomes shell code."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.security.injection import PAYLOADS, recorded, stubs


@pytest.mark.slow
@pytest.mark.parametrize("payload", ["everything", "newline", "double quotes"])
def test_template_scripts_never_run_a_payload_from_any_input(ci_project, manifests, tmp_path, payload, monkeypatch):
    """Every string input a job reads at run time gets a payload with its own marker; all jobs run."""
    pwned = tmp_path / "pwned"
    pwned.mkdir()
    includes, typed = [], {}
    for manifest in manifests.stages:
        name = manifest.name
        inputs = {"install": "pip"} if "install" in manifest.inputs else {}
        for spec in manifest.variable_inputs():
            if spec.type == "string" and spec.variable.startswith("MLCI_") and not spec.options and not spec.regex:
                value = PAYLOADS[payload].format(m=pwned / f"{name}-{spec.name}")
                inputs[spec.name] = value
                typed[spec.variable] = value
        includes.append({"local": f"ci_templates/mlci-{name}.yml", "inputs": inputs})
    ci_project.write(".gitlab-ci.yml", yaml.safe_dump({"include": includes}, sort_keys=False))
    ci_project.commit()
    log = tmp_path / "calls.jsonl"
    stub_dir = stubs(tmp_path / "bin", log)
    variables = {"PATH": f"{stub_dir}:/usr/bin:/bin"}
    monkeypatch.setenv("PATH", f"{stub_dir}:{os.environ['PATH']}")  # the shell jobs inherit it either way

    for source, jobs in (("push", ["mlci-data-check", "mlci-train", "mlci-gate", "mlci-deploy-staging",
                                   "mlci-smoke-test", "mlci-deploy-production", "mlci-rollback-production"]),
                         ("schedule", ["mlci-retrain-fetch-data", "mlci-retrain-data-check",
                                       "mlci-retrain-data-drift", "mlci-retrain-decide"])):
        done = ci_project.gcl("--force-shell-executor", *jobs, timeout=300,
                              variables={**variables, "CI_PIPELINE_SOURCE": source, "CI_COMMIT_BRANCH": "main"})
        assert "$ mlci" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]

    assert sorted(p.name for p in pwned.iterdir()) == [], "these inputs ran as shell code"
    # The payloads did reach the scripts, as data: in mlci's arguments and in its MLCI_* variables.
    seen = json.dumps(recorded(log))
    reached = sorted(v for v, value in typed.items() if f"pwned/{value.split('pwned/')[1].split()[0]}" in seen)
    assert {"MLCI_TRAIN_COMMAND", "MLCI_DATA_CONTRACT", "MLCI_RETRAIN_TRAIN_COMMAND"} <= set(reached), reached
