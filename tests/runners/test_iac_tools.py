"""The rendered IaC through the tools that will apply it: checkov, ansible-lint, ansible-playbook.

The tools run from .venv-iac (tests/runners/iac_tools.py). The runner configuration tasks of the
Ansible role run for real against localhost: in check mode (a diff, nothing written), then for real
into a temporary directory, then in check mode again (nothing left to change). No systemd, Docker,
GPU or cloud is touched (mlci_gpu_runner_manage_service=false).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from tests.runners.conftest import Project
from tests.runners.iac_tools import tools_bin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.slow  # 1-2 min each on a busy 2-core machine; the tools venv is built once, under a lock

TOKEN = "glrt-t3st-TOKEN_never-printed"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The standard fleet rendered by `mlci runners render` into <tmp>/infra/runners."""
    from mlci.cli import main

    root = tmp_path_factory.mktemp("iac")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name in list(os.environ):
            if name.startswith(("CI_", "MLCI_", "GITLAB_")):
                patch.delenv(name)
        Project(root).write_config()
        assert main(["-q", "runners", "render"]) == 0
    return root / "infra" / "runners"


@pytest.fixture(scope="module")
def tools():
    bin_dir = tools_bin()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_GATHERING": "explicit", "NO_COLOR": "1"}
    env.pop("MLCI_RUNNER_TOKEN_LAB", None)
    return bin_dir, env


def run(args, env, cwd, **extra_env):
    return subprocess.run(args, cwd=cwd, env={**env, **extra_env}, capture_output=True, text=True, timeout=600)


def test_checkov_finds_nothing_in_the_modules_and_manifests_but_catches_a_planted_flaw(folder, tools, tmp_path):
    bin_dir, env = tools
    # The control: the same module with SSH opened to the world, which checkov must flag.
    planted = tmp_path / "planted" / "eks"
    shutil.copytree(folder / "eks", planted)
    main_tf = planted / "main.tf"
    main_tf.write_text(main_tf.read_text().replace(
        "  update_config {", "  remote_access {\n    ec2_ssh_key = \"ops\"\n  }\n\n  update_config {", 1))
    done = run([str(bin_dir / "checkov"), "-d", str(folder), "-d", str(tmp_path / "planted"), "--framework",
                "terraform", "kubernetes", "--skip-download", "--quiet", "--compact", "-o", "json"], env, folder)
    assert done.returncode in (0, 1), done.stderr
    reports = []  # one JSON document per -d directory, each a report or a list of reports
    decoder, text, index = json.JSONDecoder(), done.stdout.strip(), 0
    while index < len(text):
        document, index = decoder.raw_decode(text, index)
        reports += document if isinstance(document, list) else [document]
        index = len(text) - len(text[index:].lstrip())
    failed = [(check["check_id"], check["file_abs_path"]) for report in reports
              for check in report["results"]["failed_checks"]]
    ours = [f for f in failed if str(folder) in f[1]]
    assert ours == [], ours  # no finding at all, so none of high severity
    assert any(path.startswith(str(planted)) for _, path in failed), failed
    scanned = {report["check_type"]: report["summary"]["resource_count"] for report in reports}
    assert scanned.get("terraform", 0) >= 3 and scanned.get("kubernetes", 0) >= 3, scanned


def test_ansible_lint_production_profile_and_syntax_check_pass(folder, tools):
    bin_dir, env = tools
    ansible = folder / "ansible"
    lint = run([str(bin_dir / "ansible-lint"), "--offline", "--profile", "production", "--format", "pep8",
                "playbook.yml", "roles/mlci_gpu_runner"], env, ansible)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    syntax = run([str(bin_dir / "ansible-playbook"), "--syntax-check", "-i", "inventory.example.yml",
                  "playbook.yml"], env, ansible)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr


def test_the_runner_configuration_tasks_run_against_localhost(folder, tools, tmp_path):
    bin_dir, env = tools
    ansible = folder / "ansible"
    target = tmp_path / "host"

    def playbook(*extra, token=TOKEN):
        args = [str(bin_dir / "ansible-playbook"), "-i", "localhost,", "-c", "local", "playbook.yml",
                "--tags", "runner-config", "-e", "mlci_gpu_runner_hosts=localhost",
                "-e", "@group_vars/mlci_pool_lab.yml", "-e", f"mlci_gpu_runner_config_dir={target}/etc/gitlab-runner",
                "-e", f"mlci_gpu_runner_systemd_dir={target}/systemd", "-e", "mlci_gpu_runner_manage_service=false",
                "-e", f"ansible_python_interpreter={bin_dir / 'python'}", "-e", "ansible_become=false", *extra]
        done = run(args, env, ansible, **({"MLCI_RUNNER_TOKEN_LAB": token} if token is not None else {}))
        assert TOKEN not in done.stdout + done.stderr  # never printed, not even with --diff
        return done

    # 1. Check mode: the diff shows the configuration, nothing is written.
    check = playbook("--check", "--diff")
    assert check.returncode == 0, check.stdout + check.stderr
    assert '+gpus = "all"' in check.stdout and '+token = "${MLCI_RUNNER_TOKEN}"' in check.stdout
    assert not target.exists()

    # 2. For real: the configuration as rendered, the token only in the root-only service environment.
    real = playbook()
    assert real.returncode == 0, real.stdout + real.stderr
    config_path = target / "etc/gitlab-runner/config.toml"
    config = tomllib.loads(config_path.read_text())
    assert config["runners"][0]["docker"]["gpus"] == "all" and TOKEN not in config_path.read_text()
    assert config_path.read_text() == (ansible / "roles/mlci_gpu_runner/files/pools/lab/config.toml").read_text()
    drop_in = target / "systemd/gitlab-runner.service.d/mlci-token.conf"
    assert f'Environment="MLCI_RUNNER_TOKEN={TOKEN}"' in drop_in.read_text()
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600 == stat.S_IMODE(drop_in.stat().st_mode)

    # 3. Check mode again: nothing left to change.
    again = playbook("--check")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout

    # 4. No token in the environment: the play stops and says where the token comes from.
    missing = playbook("--check", token=None)
    assert missing.returncode != 0
    assert "Set MLCI_RUNNER_TOKEN_LAB in the environment of ansible-playbook" in missing.stdout + missing.stderr
