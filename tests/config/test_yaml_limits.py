"""Every YAML input mlci reads goes through one loader with limits: hostile YAML is a located exit 2,
fast, never a hang, a crash or a silently different meaning.

Table-driven: INPUTS are the ways a YAML file reaches mlci (the config, a contract, a pipeline to lint,
a file that pipeline includes), HOSTILE the texts that hurt. Every pair must fail with exit 2,
`file:line:col`, a message that says what is wrong, in well under a second.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlci.config.yamlload import compose
from mlci.errors import ConfigError

LAUGHS = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
) + "\n"

HOSTILE = {
    # name: (text, words the message must contain)
    "alias bomb": (LAUGHS, "alias bomb"),
    "recursive alias": ("key: &loop [1, *loop]\n", "recursive alias"),
    # libyaml itself stops flow nesting at 1000 levels, before the composer's limit is reached
    "deep flow nesting": ("key: " + "[" * 5000 + "]" * 5000 + "\n", "nest"),
    "deep block nesting": ("".join(f"{'  ' * i}k{i}:\n" for i in range(300)) + f"{'  ' * 300}v: 1\n",
                           "nested deeper than"),
    "python object tag": ("key: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
                          "unknown YAML tag !!python/object/apply:os.system"),
    "custom tag on a mapping": ("key: !vault {path: secret}\n", "unknown YAML tag !vault"),
    "binary tag": ("key: !!binary aGVsbG8=\n", "unknown YAML tag !!binary"),
    "undefined alias": ("a: 1\nb: *nothing\n", "undefined alias *nothing"),
    "duplicate anchor": ("a: &x 1\nb: &x 2\n", "anchor &x is defined twice"),
    "not utf-8": (b"a: 1\nb: caf\xe9\n", "not UTF-8"),
    "6.4 MB": ("".join(f"k{i}: {'y' * 60}\n" for i in range(100_000)), "mlci reads YAML files of at most"),
}
EXPECTED_LINE = {"not utf-8": "2:7", "duplicate anchor": "2:4", "undefined alias": "2:4",
                 "python object tag": "1:6", "recursive alias": "1:16", "6.4 MB": "1:1", "binary tag": "1:6"}


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# How each input is handed to mlci: (file to write, command that reads it, exit codes). A file that
# cannot be loaded is exit 2; lint reports a broken included file as an error finding (exit 1).
INPUTS = {
    "mlci.yml": ("mlci.yml", ["config", "show"], (2,)),
    "a contract": ("contract.yml", ["data", "check", "data.csv", "--contract", "contract.yml"], (2,)),
    "a pipeline to lint": ("ci.yml", ["lint", "ci.yml"], (2,)),
    "a file the pipeline includes": ("ci/jobs.yml", ["lint", "main-ci.yml"], (1,)),
}


@pytest.mark.parametrize("hostile", HOSTILE, ids=list(HOSTILE))
@pytest.mark.parametrize("source", INPUTS, ids=list(INPUTS))
def test_hostile_yaml_is_a_located_exit_2_in_well_under_a_second(run_cli, tmp_path, clean_env, source, hostile):
    clean_env.chdir(tmp_path)
    file, argv, codes = INPUTS[source]
    text, words = HOSTILE[hostile]
    _write(tmp_path / "data.csv", "a\n1\n")
    _write(tmp_path / "main-ci.yml", "include:\n  - local: ci/jobs.yml\n")
    # Warm the imports up on a harmless file, so the timing below is mlci's reading only.
    _write(tmp_path / file, "stages: [test]\n" if "lint" in argv else "columns: {a: {not-null: true}}\n"
           if "contract" in file else "model: {name: m}\n")
    run_cli(*argv)
    _write(tmp_path / file, text)

    started = time.monotonic()
    code, out, err = run_cli(*argv)
    seconds = time.monotonic() - started

    shown = out + err
    assert code in codes, shown
    assert words in shown, shown
    assert f"{file}:" in shown and (hostile not in EXPECTED_LINE or f"{file}:{EXPECTED_LINE[hostile]}" in shown), shown
    assert "Traceback" not in shown
    assert seconds < 1.0, f"{seconds:.2f}s"


@pytest.mark.parametrize("text", ["", "   \n\n  \n", "# nothing yet\n# model: ...\n", "---\n", "~\n"],
                         ids=["empty", "whitespace", "comments only", "document marker only", "null"])
def test_a_config_without_settings_is_an_error_that_says_what_to_write(run_cli, tmp_path, clean_env, text):
    clean_env.chdir(tmp_path)
    _write(tmp_path / "mlci.yml", text)
    code, _, err = run_cli("config", "show")
    assert code == 2
    assert "mlci.yml:1:1: the file has no settings" in err
    assert "model:" in err and "name: my-model" in err and "mlci init" in err


def test_without_a_config_file_the_defaults_still_apply(run_cli, tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    assert run_cli("config", "show")[0] == 0


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("gate:\n  rules:\n    - metric: rmse\n      max: lots\n", "mlci.yml:4:12: gate.rules[0].max: expected number"),
    ("train:\n  idle-gpu:\n    action: explode\n", "mlci.yml:3:13: train.idle-gpu.action: \"explode\" is not one of"),
    ("deploy:\n  environments:\n    - name: staging\n      tagret: command\n",
     "mlci.yml:4:7: deploy.environments[0]: unknown key 'tagret'; did you mean 'target'?"),
    ("model:\n  name: a\n  name: b\n", "mlci.yml:3:3: model.name: duplicate key 'name'"),
])
def test_every_config_message_names_the_location_and_the_key(run_cli, tmp_path, clean_env, yaml_text, expected):
    clean_env.chdir(tmp_path)
    _write(tmp_path / "mlci.yml", yaml_text)
    code, _, err = run_cli("config", "show")
    assert code == 2 and expected in err, err


def test_a_reference_tag_is_allowed_where_gitlab_allows_it_and_nowhere_else():
    ci = ".setup:\n  script: [echo]\njob:\n  script:\n    - !reference [.setup, script]\n"
    assert compose(ci, "ci.yml", tags=("!reference",)) is not None
    with pytest.raises(ConfigError, match=r"mlci.yml:5:7: job.script\[0\]: unknown YAML tag !reference"):
        compose(ci, "mlci.yml")


def test_command_line_yaml_values_are_limited_too(run_cli, tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    code, _, err = run_cli("--set", "gate.warn-only=" + LAUGHS.replace("\n", " "), "config", "show")
    assert code == 2 and "Traceback" not in err
