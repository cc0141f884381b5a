"""`mlci hook NAME [-- CMD...]`: the configured command or the one after --, its exit code, its environment."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from mlci.cli import main

PY = sys.executable


@pytest.fixture
def hook_cli(capfd):
    """Run mlci in-process; the hook writes straight to file descriptors 1/2, so capture at fd level."""

    def run(project, *args: str):
        code = main(project.cli(*args))
        out, err = capfd.readouterr()
        return code, out, err

    return run


def _dump_env_command(path) -> list[str]:
    script = (
        "import json, os, sys; "
        f"json.dump({{k: v for k, v in os.environ.items() if k.startswith(('MLCI_', 'MLFLOW_', 'SNAPSHOT'))}}, "
        f"open({str(path)!r}, 'w'))"
    )
    return [PY, "-c", script]


def test_configured_hook_runs_with_mlci_environment(project, hook_cli, clean_env):
    dump = project.root / "env.json"
    project.write_data({
        "model": {"name": "churn"},
        "mlflow": {"tracking-uri": "sqlite:///store.db"},
        "retrain": {"hooks": {"fetch-data": {
            "command": _dump_env_command(dump),
            "environment": {"SNAPSHOT_DAYS": 7, "SNAPSHOT_FULL": True},
        }}},
    })
    clean_env.setenv("MLCI_FORCE_RETRAIN", "true")  # the job's own variables pass through

    code, out, err = hook_cli(project, "hook", "fetch-data")

    assert code == 0, err
    env = json.loads(dump.read_text())
    assert env["MLCI_HOOK"] == "fetch-data"
    assert env["MLCI_MODEL_NAME"] == "churn"
    assert env["MLFLOW_TRACKING_URI"] == "sqlite:///store.db"
    assert env["MLCI_CONFIG"] == str(project.root / "mlci.yml")
    assert env["MLCI_OUT_DIR"] == str(project.out)
    assert env["MLCI_FORCE_RETRAIN"] == "true"
    assert (env["SNAPSHOT_DAYS"], env["SNAPSHOT_FULL"]) == ("7", "true")
    assert "mlci: hook fetch-data:" in out


def test_shell_hook_output_streams_and_its_exit_code_is_ours(project, hook_cli):
    project.write_data({"retrain": {"hooks": {"fetch-data": "echo fetched 1000 rows; echo oops >&2; exit 7"}}})

    code, out, err = hook_cli(project, "hook", "fetch-data")

    assert code == 7
    assert "fetched 1000 rows" in out and "oops" in err
    assert "hook fetch-data exited with code 7" in err


def test_command_after_double_dash_wins(project, hook_cli):
    project.write_data({"retrain": {"hooks": {"fetch-data": "exit 9"}}})

    code, out, _ = hook_cli(project, "hook", "fetch-data", "--", PY, "-c", "print('from the template input')")

    assert code == 0
    assert "from the template input" in out


def test_command_after_double_dash_needs_no_config(project, capfd):
    assert not (project.root / "mlci.yml").exists()

    code = main(["hook", "anything", "--", PY, "-c", "print('ran')"])

    assert code == 0 and "ran" in capfd.readouterr().out


def test_unknown_hook_exits_2_pointing_into_mlci_yml(project, hook_cli):
    project.write_config("""
        model:
          name: churn
        retrain:
          hooks:
            fetch-data: ./fetch.sh
    """)

    code, _, err = hook_cli(project, "hook", "fetch-date")

    assert code == 2
    assert f"{project.root / 'mlci.yml'}:5:5" in err
    assert "did you mean 'fetch-data'?" in err


def test_unknown_hook_without_any_hooks_hints_how_to_define_one(project, hook_cli):
    project.write_data({"model": {"name": "churn"}})

    code, _, err = hook_cli(project, "hook", "fetch-data")

    assert code == 2
    assert "no hooks are defined" in err and "mlci hook fetch-data -- CMD" in err


def test_missing_program_is_a_config_error_at_the_hook(project, hook_cli):
    project.write_config("""
        retrain:
          hooks:
            fetch-data: [no-such-program-mlci-test, --all]
    """)

    code, _, err = hook_cli(project, "hook", "fetch-data")

    assert code == 2
    assert "command not found: no-such-program-mlci-test" in err
    assert "mlci.yml:3:" in err


def test_timeout_stops_the_whole_process_tree(project, hook_cli):
    marker = project.root / "grandchild-still-alive"
    # The shell starts a grandchild that would write the marker after 3 s; the timeout must kill it too.
    project.write_data({"retrain": {"hooks": {"slow": {
        "command": f"{PY} -c \"import time, pathlib; time.sleep(3); pathlib.Path({str(marker)!r}).touch()\"; true",
        "timeout": "1s",
    }}}})
    started = time.monotonic()

    code, _, err = hook_cli(project, "hook", "slow")

    assert code == 124
    assert time.monotonic() - started < 2.9
    assert "did not finish within 1s" in err
    time.sleep(3)
    assert not marker.exists(), "the grandchild survived the timeout"


def test_hook_timeout_must_be_a_duration(project, hook_cli):
    project.write_config("""
        retrain:
          hooks:
            slow:
              command: sleep 1
              timeout: soon
    """)

    code, _, err = hook_cli(project, "hook", "slow")

    assert code == 2
    assert "mlci.yml:5:" in err and "not a duration" in err


def test_working_directory_is_relative_to_mlci_yml(project, hook_cli, clean_env):
    (project.root / "data").mkdir()
    elsewhere = project.root / "elsewhere"
    elsewhere.mkdir()
    clean_env.chdir(elsewhere)
    project.write_data({"retrain": {"hooks": {"where": {
        "command": [PY, "-c", "import os; print('cwd=' + os.getcwd())"], "working-directory": "data",
    }}}})

    code, out, _ = hook_cli(project, "hook", "where")

    assert code == 0
    assert f"cwd={os.path.realpath(project.root / 'data')}" in out
