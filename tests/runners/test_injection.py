"""Hostile pool tags, images and URLs cannot change the structure of any rendered file.

Each file is parsed back the way its consumer reads it (YAML, TOML, JSON, HCL, Helm's `tpl`,
markdown tables) and compared with a render of harmless values: same keys, same list lengths, same
types, and the hostile value comes back byte for byte where it belongs.
"""

from __future__ import annotations

import copy
import json
import re
import sys

import pytest
import yaml

from mlci.runners.render.helm import TPL_OPEN_ESCAPED, unescape_tpl
from tests.runners.conftest import pool

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Each of these breaks a renderer that splices text: YAML/TOML/JSON quoting, Go templates (Helm tpl),
# HCL and shell interpolation, GitLab inputs, Jinja, markdown tables, HTML comments and mentions.
HOSTILE_TAGS = [
    'gpu" = "x',
    "a'b: c",
    "{{ .Release.Name }}{{ fail \"boom\" }}",
    "${file(\"/etc/passwd\")} %{ if true }x%{ endif }",
    "$[[ inputs.tags ]] $(id) `id`",
    "&anchor *alias !!python/object/apply:os.system ['id']",
    "| table | breaker |",
    "<!-- mlci:report --> @all [x](https://evil.example) # heading",
    "tab\there \u2028 é 😀 \\ back",
]
HOSTILE_IMAGE = "registry.example/x:1\"]}{{exit}}${HOME}$$[[inputs.x]]#!!python/object:os.system'\\"
HOSTILE_URL = "https://gitlab.example.com/{{.Release.Name}}/${X}/$[[inputs.y]]#frag"


def hostile(runners: dict) -> dict:
    runners = copy.deepcopy(runners)
    for entry in runners["pools"]:
        entry["tags"] = [*entry["tags"], *HOSTILE_TAGS]
        entry["image"] = HOSTILE_IMAGE
    return runners


def harmless(runners: dict) -> dict:
    runners = copy.deepcopy(runners)
    for entry in runners["pools"]:
        entry["tags"] = [*entry["tags"], *(f"tag{i}" for i in range(len(HOSTILE_TAGS)))]
        entry["image"] = "registry.example/x:1"
    return runners


def shape(node):
    if isinstance(node, dict):
        return {key: shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [shape(item) for item in node]
    return type(node).__name__


def parse(name: str, text: str):
    if name.endswith((".yaml", ".yml")):
        return list(yaml.safe_load_all(text))
    if name.endswith(".toml"):
        return tomllib.loads(text)
    if name.endswith(".json"):
        return json.loads(text)
    if name.endswith(".tf"):
        import hcl2

        return hcl2.loads(text)
    if name.endswith(".md"):
        rows = [line for line in text.splitlines() if line.startswith("|")]
        return [len(re.findall(r"(?<!\\)\|", row)) for row in rows]
    return text


@pytest.fixture
def both(project):
    benign, _ = project.render(harmless(project.runners))
    bad, _ = project.render(hostile(project.runners), gitlab={"url": HOSTILE_URL})
    return benign.files, bad.files


def test_no_file_changes_shape(both):
    benign, bad = both
    assert sorted(benign) == sorted(bad)
    for name in sorted(benign):
        if name.endswith((".py", ".j2")):
            assert benign[name] == bad[name], name  # shipped as they are
            continue
        assert shape(parse(name, bad[name])) == shape(parse(name, benign[name])), name


def test_the_hostile_values_come_back_exactly(both):
    _, bad = both
    runners = json.loads(bad["gitlab/pools.json"])["pools"]
    assert all(entry["tags"][-len(HOSTILE_TAGS):] == HOSTILE_TAGS for entry in runners)
    docker = tomllib.loads(bad["ansible/roles/mlci_gpu_runner/files/pools/lab/config.toml"])
    assert docker["runners"][0]["docker"]["image"] == HOSTILE_IMAGE
    assert docker["runners"][0]["url"] == HOSTILE_URL
    values = yaml.safe_load(bad["helm/a10g/values.yaml"])
    assert values["gitlabUrl"] == HOSTILE_URL
    config = tomllib.loads(unescape_tpl(values["runners"]["config"]))
    assert config["runners"][0]["kubernetes"]["image"] == HOSTILE_IMAGE


def test_helm_tpl_gets_no_template_action_but_its_own_escapes(both):
    """The chart runs runners.config through `tpl`: every `{{` must be the escape that prints `{{`."""
    _, bad = both
    config = yaml.safe_load(bad["helm/a10g/values.yaml"])["runners"]["config"]
    actions = re.findall(r"\{\{.*?\}\}", config)
    assert actions and set(actions) == {TPL_OPEN_ESCAPED}


def test_markdown_tables_keep_their_columns(both):
    _, bad = both
    header, *rows = parse("README.md", bad["README.md"])
    assert rows and all(cells == header for cells in rows)
    assert "<!--" not in bad["README.md"] and "@all" not in bad["README.md"]


def test_hostile_values_in_limits_are_refused_not_rendered(project):
    pool(project.runners, "quad")["cpu-request-max"] = '8"\n[runners.docker]\nprivileged = true'
    project.write_config()
    from mlci.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match="not a Kubernetes quantity"):
        project.fleet()
