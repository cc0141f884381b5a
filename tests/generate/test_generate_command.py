"""`mlci generate`: writing, --check, the catalog layout and the README reference."""

from __future__ import annotations

import textwrap

import pytest

from mlci.errors import ConfigErrors
from mlci.generate.readme import BEGIN, END


def test_committed_templates_catalog_and_readme_match_a_fresh_render(run_cli, repo_root, monkeypatch):
    """The CI job `generated-files` runs exactly this; a stale ci_templates/ fails it."""
    monkeypatch.chdir(repo_root)
    code, out, err = run_cli("generate", "--check", "--catalog", ".")
    assert code == 0, out + err
    assert "up to date" in out


def test_check_names_the_stale_file_with_a_diff_and_exits_1(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("generate")[0] == 0
    assert run_cli("generate", "--check")[0] == 0
    path = tmp_path / "ci_templates" / "mlci-gate.yml"
    path.write_text(path.read_text().replace("mlci gate", "mlci gate --warn-only"))
    (tmp_path / "ci_templates" / "mlci-old.yml").write_text("leftover: {script: [x]}\n")
    code, out, err = run_cli("generate", "--check")
    assert code == 1
    assert "ci_templates/mlci-gate.yml (committed)" in out and "-    - mlci gate --warn-only" in out
    assert "ci_templates/mlci-old.yml: not produced by mlci generate" in out
    assert "2 generated file(s) differ" in err and "run `mlci generate`" in err
    assert run_cli("generate")[0] == 0
    assert "mlci gate --warn-only" not in path.read_text()


def test_generate_writes_only_what_changed(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from mlci.generate.stages import STAGE_ORDER

    templates = len(STAGE_ORDER) + 1  # one per stage, plus mlci-all.yml
    code, out, _ = run_cli("generate")
    assert code == 0 and out.count("wrote ") == templates
    code, out, _ = run_cli("generate")
    assert code == 0 and "wrote" not in out and f"0 of {templates}" in out


def test_catalog_layout_has_one_component_per_stage_and_a_readme(run_cli, tmp_path, monkeypatch):
    import yaml

    monkeypatch.chdir(tmp_path)
    code, _, _ = run_cli("generate", "--catalog", "catalog", "--catalog-project", "ml/platform/mlci")
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "catalog" / "templates").iterdir())
    assert names == ["all.yml", "data.yml", "deploy.yml", "gate.yml", "monitor.yml", "optimize.yml", "report.yml",
                     "retrain.yml", "runners.yml", "train.yml"]
    header, body = yaml.safe_load_all((tmp_path / "catalog" / "templates" / "all.yml").read_text())
    assert header["spec"]["component"] == ["sha"]
    assert header["spec"]["inputs"]["mlci-project"]["default"] == "ml/platform/mlci"
    assert body["include"][0]["component"] == "$CI_SERVER_FQDN/$[[ inputs.mlci-project ]]/data@$[[ component.sha ]]"
    readme = (tmp_path / "catalog" / "README.md").read_text()
    assert BEGIN in readme and END in readme and "### `train.yml`" in readme
    assert run_cli("generate", "--check", "--catalog", "catalog", "--catalog-project", "ml/platform/mlci")[0] == 0


def test_readme_reference_is_rewritten_between_the_markers_only(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text(f"# My fork\n\nIntro stays.\n\n{BEGIN}\nold tables\n{END}\n\n## Outro stays\n")
    assert run_cli("generate")[0] == 0
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# My fork\n\nIntro stays.\n\n") and readme.endswith("## Outro stays\n")
    assert "old tables" not in readme
    assert "| `tags` | array | `[\"gpu\"]` | input only |" in readme
    assert "| `command` | string | `\"\"` | `MLCI_TRAIN_COMMAND` |" in readme
    (tmp_path / "README.md").write_text(readme.replace("| `tags` |", "| `tagz` |"))
    assert run_cli("generate", "--check")[0] == 1


def test_a_readme_without_markers_is_left_alone_unless_named(run_cli, tmp_path, monkeypatch):
    """A project that vendors the templates keeps its own README; naming one without markers is an error."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# no markers here\n")
    code, out, _ = run_cli("generate")
    assert code == 0 and "README" not in out
    assert (tmp_path / "README.md").read_text() == "# no markers here\n"
    code, _, err = run_cli("generate", "--readme", "README.md")
    assert code == 2
    assert "README.md: the README has no" in err and "add the two marker lines" in err
    code, _, err = run_cli("generate", "--readme", "docs/TEMPLATES.md")
    assert code == 2 and "docs/TEMPLATES.md: file not found" in err


def test_markdown_cells_cannot_be_broken_by_descriptions_or_defaults():
    from mlci.generate.readme import md_code, md_text

    assert md_text("a | b\nc") == "a \\| b c"
    assert md_code("x`y") == "``x`y``"
    assert md_code("`edge`") == "`` `edge` ``"
    assert md_code("") == '`""`'
    assert md_code(["gpu"]) == '`["gpu"]`'


def manifest_text(**overrides) -> str:
    base = {
        "name": "data", "title": "T", "description": "D.",
        "jobs": "{mlci-data-check: runs}",
        "inputs": "{stage: {default: test, variable: false, description: Stage.}}",
    }
    base.update(overrides)
    return "\n".join(f"{k}: {v}" for k, v in base.items()) + "\n"


@pytest.mark.parametrize(("inputs", "message", "line"), [
    ("\n  retries: {type: number, default: two, description: x}", "default does not match type 'number'", 2),
    ("\n  mode: {options: [a, b], default: c, description: x}", "default is not one of the options", 2),
    ("\n  flag: {type: boolean, default: true, variable: MLCI_X, description: x}",
     "a boolean input cannot have a variable form", 2),
    ("\n  Bad_Name: {default: x, description: x}", "does not match", 2),
    ("\n  env: {default: 'a b', regex: '^[a-z]+$', description: x}", "default does not match regex", 2),
    ("\n  empty: {default: null, description: x}", "default must not be null", 2),
])
def test_manifest_mistakes_are_reported_with_file_and_line(inputs, message, line):
    from mlci.generate.stages import parse_manifest

    text = manifest_text(inputs=inputs)
    with pytest.raises(ConfigErrors) as caught:
        parse_manifest(text, "mlci/generate/manifest/data.yml")
    rendered = str(caught.value)
    assert message in rendered
    assert f"mlci/generate/manifest/data.yml:{line + 4}:" in rendered


def test_manifest_name_must_match_its_file():
    from mlci.generate.stages import parse_manifest

    with pytest.raises(ConfigErrors, match="must match the file name"):
        parse_manifest(manifest_text(), "manifest/train.yml")


def test_a_template_that_forgets_an_input_does_not_render(manifests, monkeypatch):
    """Declared-but-unused inputs would be silent no-ops for users: rendering refuses them."""
    from dataclasses import replace

    from mlci.generate.render import RenderError, render_stage
    from mlci.generate.stages import InputSpec

    gate = manifests.by_name("gate")
    extra = InputSpec(name="forgotten", description="never used", default="x", has_default=True)
    with pytest.raises(RenderError, match="never used by the template: forgotten"):
        render_stage(replace(gate, inputs={**gate.inputs, "forgotten": extra}))


def test_manifest_file_error_from_the_loader_shows_its_path(tmp_path):
    from mlci.generate.stages import load_manifests

    (tmp_path / "data.yml").write_text(textwrap.dedent("""\
        name: data
        title: T
        description: D.
        jobs: {mlci-data-check: runs}
        inputs:
          stage: {default: 3, description: Stage.}
        """))
    with pytest.raises(ConfigErrors) as caught:
        load_manifests(tmp_path)
    assert f"{tmp_path / 'data.yml'}:6:" in str(caught.value)
