"""The contract between the templates and the commands they call.

Templates hand every input to mlci unconditionally, as `--flag "$MLCI_X"` or as
an MLCI_* variable that the config layer reads; these tests pin what makes
that safe, and that every variable a script uses is actually defined.
"""

from __future__ import annotations

import re

import pytest
import yaml

from mlci.config.effective import _scalar_leaves, env_name
from mlci.config.schema import full_schema

# Variables a script may use without the template defining them: dotenv reports of earlier jobs,
# the install hidden jobs, and what a person sets when running a manual job.
FROM_ELSEWHERE = {
    "MLCI_MODEL_VERSION",  # the gate's dotenv
    "MLCI_ROLLBACK_TO",  # the rollback job's "Run job" form
    "MLCI_COMPONENT_VERSION",  # .mlci-install in the catalog layout ($[[ component.version ]]); else unset
    "MLCI_CANARY_REASON",  # the canary abort job's "Run job" form
    "MLCI_DEPLOY_URL",  # the deploy job's own dotenv (environment:url)
}


def test_an_empty_flag_value_means_the_flag_was_not_given():
    from mlci.cli import build_parser, drop_empty_option_values

    def kept(*argv: str) -> list[str]:
        return drop_empty_option_values(list(argv), build_parser(list(argv)))

    assert kept("data", "check", "--contract", "", "a.csv") == ["data", "check", "a.csv"]
    assert kept("data", "check", "--contract=", "a.csv") == ["data", "check", "a.csv"]
    assert kept("rollback", "--env", "production", "--to", "") == ["rollback", "--env", "production"]
    assert kept("data", "check", "--warn-only", "") == ["data", "check", "--warn-only", ""], "a switch takes no value"
    assert kept("train", "--", "--flag", "") == ["train", "--", "--flag", ""], "the training command is untouched"
    assert kept("rollback", "--env", "production", "--to", "3") == ["rollback", "--env", "production", "--to", "3"]


def test_an_empty_mlci_variable_leaves_mlci_yml_in_charge(tmp_path, clean_env):
    from mlci.config import load_effective

    path = tmp_path / "mlci.yml"
    path.write_text("train:\n  command: python train.py\n")
    assert load_effective(path, env={"MLCI_TRAIN_COMMAND": ""}).get("train", "command") == "python train.py"
    config = load_effective(path, env={"MLCI_TRAIN_COMMAND": "python other.py"})
    assert config.get("train", "command") == "python other.py"
    assert config.source_of("train", "command") == "env MLCI_TRAIN_COMMAND"


def _script_variables(text: str) -> set[str]:
    _, body = yaml.safe_load_all(text)
    found = set()
    for job in body.values():
        if not isinstance(job, dict):
            continue
        for key in ("script", "before_script"):
            for line in job.get(key, []):
                found |= set(re.findall(r"\$\{?(MLCI_[A-Z0-9_]+)", line))
        for rule in job.get("rules", []):
            found |= set(re.findall(r"\$(MLCI_[A-Z0-9_]+)", rule.get("if", "")))
        for value in (job.get("variables") or {}).values():
            found |= set(re.findall(r"\$(MLCI_[A-Z0-9_]+)", str(value)))
    return found


@pytest.mark.parametrize("name", ["mlci-data.yml", "mlci-train.yml", "mlci-gate.yml", "mlci-report.yml",
                                  "mlci-deploy.yml", "mlci-retrain.yml"])
def test_every_variable_a_job_uses_is_defined_or_comes_from_an_earlier_job(rendered, name):
    _, body = yaml.safe_load_all(rendered[name])
    defined = set(body.get("variables", {}))
    for job in body.values():
        if isinstance(job, dict):
            defined |= set(job.get("variables") or {})
    used = _script_variables(rendered[name]) - {"MLCI_PIPELINE"}  # set by schedules and triggers
    assert used - defined - FROM_ELSEWHERE == set()


def test_template_variables_that_are_also_config_settings_have_a_compatible_type(manifests):
    """MLCI_TRAIN_COMMAND is both the train template's input variable and train.command: the config layer
    must accept whatever string the input holds (an empty one is ignored)."""
    leaves = {env_name(path): (path, schema) for path, schema in _scalar_leaves(full_schema())}
    shared = []
    for manifest in manifests.stages:
        for spec in manifest.variable_inputs():
            if spec.variable in leaves:
                path, schema = leaves[spec.variable]
                types = schema.get("type")
                types = types if isinstance(types, list) else [types]
                assert "string" in types or "enum" in schema, f"{spec.variable} -> {'.'.join(path)}: {types}"
                if "enum" in schema:
                    assert set(spec.options) - {""} <= set(schema["enum"]), spec.variable
                shared.append(spec.variable)
    assert {"MLCI_TRAIN_COMMAND", "MLCI_DATA_DRIFT_REFERENCE", "MLCI_RETRAIN_MAX_MODEL_AGE"} <= set(shared)
