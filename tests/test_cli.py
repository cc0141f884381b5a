"""The CLI shell: exit codes, help, version, lazy imports, token redaction."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlci import __version__, cli
from mlci.errors import CheckFailed, ConfigError, ExternalServiceError, MlciError


def test_version(run_cli):
    with pytest.raises(SystemExit):
        cli.build_parser(["--version"]).parse_args(["--version"])
    out = subprocess.run([sys.executable, "-m", "mlci", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"mlci {__version__}"


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "mlci", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in cli.COMMANDS:
        assert name in out.stdout


def test_help_imports_no_heavy_library():
    probe = (
        "import sys; from mlci.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('mlflow', 'polars', 'matplotlib', 'gitlab', 'sklearn', 'numpy', 'jsonschema', 'optuna')"
        " if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="


def test_every_command_module_configures_without_heavy_imports():
    for name, (module, _) in cli.COMMANDS.items():
        probe = (
            "import sys\nfrom mlci.cli import build_parser\n"
            f"build_parser([{name!r}])\n"
            "print(','.join(m for m in ('mlflow', 'polars', 'matplotlib', 'gitlab', 'sklearn', 'optuna')"
            " if m in sys.modules))"
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()} at configure time"


def test_no_command_is_a_usage_error(run_cli):
    code, out, _ = run_cli()
    assert code == 2 and "COMMAND" in out


def test_a_global_option_whose_value_is_a_command_name_does_not_pick_the_command(run_cli, tmp_path):
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text("check:\n  script: [echo ok]\n", encoding="utf-8")
    code, out, err = run_cli("--out-dir", "data", "lint", str(pipeline), "--no-config")
    assert code == 0, err
    assert "0 error(s)" in out


def test_an_unknown_command_lists_every_command(run_cli):
    code, _, err = run_cli("lnit")
    assert code == 2 and "invalid choice: 'lnit'" in err and "'lint'" in err


def test_unknown_flag_is_a_usage_error(run_cli):
    code, _, err = run_cli("config", "show", "--bogus")
    assert code == 2 and "unrecognized arguments" in err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad", location="mlci.yml:3:1"), 2),
        (CheckFailed("rule failed"), 1),
        (ExternalServiceError("GitLab", "https://gitlab.example.com/api/v4/projects/1", "denied", status=403), 3),
    ],
)
def test_errors_map_to_exit_codes_in_one_place(monkeypatch, run_cli, error: MlciError, code: int):
    import mlci.commands.config as config_command

    def boom(args, ctx):
        raise error

    monkeypatch.setattr(config_command, "run", boom)
    exit_code, _, err = run_cli("config", "show")
    assert exit_code == code
    assert str(error) in err


def test_external_error_names_url_and_status(monkeypatch, run_cli):
    import mlci.commands.config as config_command

    def boom(args, ctx):
        raise ExternalServiceError(
            "GitLab", "https://gitlab.example.com/api/v4/projects/7/merge_requests/3/notes", "forbidden",
            status=403, hint="the token needs the api scope",
        )

    monkeypatch.setattr(config_command, "run", boom)
    code, _, err = run_cli("config", "show")
    assert code == 3
    assert "https://gitlab.example.com/api/v4/projects/7/merge_requests/3/notes (HTTP 403)" in err
    assert "hint: the token needs the api scope" in err


def test_tokens_never_reach_the_terminal(monkeypatch, run_cli):
    import mlci.commands.config as config_command

    secret = "glpat-abcdefghijklmnopqrstu"
    monkeypatch.setenv("MLCI_GITLAB_TOKEN", secret)

    def boom(args, ctx):
        raise ExternalServiceError("GitLab", f"https://x/api?private_token={secret}", f"echoed {secret}", status=401)

    monkeypatch.setattr(config_command, "run", boom)
    code, out, err = run_cli("config", "show")
    assert code == 3
    assert secret not in out + err
    assert "[MASKED]" in err


def test_a_missing_extra_names_the_install_line(tmp_path):
    """A job that installed a lean extra and runs a command needing another gets the pip line, not a traceback."""
    (tmp_path / "d.csv").write_text("a\n1\n")
    (tmp_path / "c.yml").write_text("columns:\n  a: {type: int}\n")
    # A fresh interpreter in which polars cannot be imported, as in a job that installed only the core.
    probe = (
        "import sys\n"
        "class NoPolars:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'polars' or name.startswith('polars.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoPolars())\n"
        "from mlci.cli import main\n"
        "sys.exit(main(['data', 'check', 'd.csv', '--contract', 'c.yml']))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "`mlci data check` needs the Python package 'polars'" in out.stderr
    assert "pip install 'mlci[data]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unrelated_missing_module_is_not_disguised(monkeypatch):
    from mlci.extras import missing_extra

    assert missing_extra(ModuleNotFoundError("x", name="no_such_thing"), "train") is None
