"""Each extra in a real, lean virtualenv: what a template job gets, and nothing more.

The wheel is built from this checkout once per session; uv installs it with one
extra into an empty venv (dependencies from the machine's normal index and uv's
cache). Each venv must import what mlci/extras.py says the extra provides, must
not hold the heavy packages of other extras, and runs the commands it is for;
a command whose extra is missing answers with the install line, not a traceback.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlci.extras import COMMAND_EXTRAS, EXTRA_MODULES
from tests.tools import uv

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("mlflow", "polars", "scipy", "matplotlib", "gitlab", "pandas", "sqlalchemy", "pynvml", "numpy")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lean-venvs")]


@pytest.fixture(scope="session")
def mlci_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([uv(), "build", "-q", "--wheel", "-o", str(out), str(REPO)], check=True, timeout=600)
    (wheel,) = out.glob("mlci-*.whl")
    return wheel


def lean_venv(tmp_path: Path, wheel: Path, extra: str) -> Path:
    venv = tmp_path / f"venv-{extra or 'core'}"
    subprocess.run([uv(), "venv", "-q", str(venv)], check=True, timeout=300)
    requirement = f"{wheel}[{extra}]" if extra else str(wheel)
    subprocess.run([uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), requirement],
                   check=True, timeout=900)
    return venv


def importable(venv: Path, modules) -> dict[str, bool]:
    code = f"import importlib.util, json; print(json.dumps({{m: importlib.util.find_spec(m) is not None " \
           f"for m in {list(modules)!r}}}))"
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def mlci(venv: Path, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "mlci"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd),
                                            "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})})


def packages(venv: Path) -> list[str]:
    done = subprocess.run([uv(), "pip", "list", "--format", "json", "--python", str(venv / "bin" / "python")],
                          capture_output=True, text=True, check=True)
    return [item["name"] for item in json.loads(done.stdout)]


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlci.yml").write_text("model:\n  name: lean\n")
    (root / "contract.yml").write_text("columns:\n  x: {dtype: int64, not-null: true, min: 0}\n")
    (root / "ref.csv").write_text("x\n" + "\n".join(str(i % 10) for i in range(200)) + "\n")
    (root / "cur.csv").write_text("x\n" + "\n".join(str(5 + i % 10) for i in range(200)) + "\n")
    return root


def test_the_core_is_light_and_runs_init_generate_lint(tmp_path, mlci_wheel):
    venv = lean_venv(tmp_path, mlci_wheel, "")
    names = packages(venv)
    assert len(names) <= 15, names
    assert not any(importable(venv, HEAVY).values())
    work = _project(tmp_path / "core")
    assert mlci(venv, "--version", cwd=work).returncode == 0
    init = mlci(venv, "init", "--force", cwd=work)
    assert init.returncode == 0, init.stderr
    lint = mlci(venv, "lint", cwd=work)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    check = mlci(venv, "data", "check", "ref.csv", "--contract", "contract.yml", cwd=work)
    assert check.returncode == 2 and "Traceback" not in check.stderr
    assert "`mlci data check` needs the Python package 'polars'" in check.stderr
    assert "pip install 'mlci[data]'" in check.stderr


def test_the_data_extra_checks_data_and_names_the_drift_extra(tmp_path, mlci_wheel):
    venv = lean_venv(tmp_path, mlci_wheel, "data")
    found = importable(venv, HEAVY)
    assert found["polars"] and not any(v for k, v in found.items() if k != "polars")
    work = _project(tmp_path / "data")
    check = mlci(venv, "data", "check", "ref.csv", "--contract", "contract.yml", cwd=work)
    assert check.returncode == 0, check.stdout + check.stderr
    drift = mlci(venv, "data", "drift", "--reference", "ref.csv", "cur.csv", cwd=work)
    assert drift.returncode == 2 and "pip install 'mlci[drift]'" in drift.stderr, drift.stderr


def test_the_drift_extra_measures_drift(tmp_path, mlci_wheel):
    venv = lean_venv(tmp_path, mlci_wheel, "drift")
    work = _project(tmp_path / "drift")
    drift = mlci(venv, "data", "drift", "--reference", "ref.csv", "cur.csv", cwd=work)
    assert drift.returncode in (0, 1), drift.stdout + drift.stderr
    assert (work / "mlci-out" / "drift.json").exists()


def test_mlflow_skinny_points_a_sqlite_store_at_the_mlflow_extra(tmp_path, mlci_wheel):
    venv = lean_venv(tmp_path, mlci_wheel, "train")
    assert importable(venv, ["mlflow", "sqlalchemy"]) == {"mlflow": True, "sqlalchemy": False}
    work = _project(tmp_path / "train")
    done = mlci(venv, "train", "--", "true", cwd=work, env={"MLFLOW_TRACKING_URI": f"sqlite:///{work}/m.db"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs the full MLflow package" in done.stderr and "pip install 'mlci[mlflow]'" in done.stderr


# The extras template jobs install (the data-source extras are tried by the data engine tests).
JOB_EXTRAS = sorted((set(COMMAND_EXTRAS.values()) | {"mlflow", "gpu"}) - {"data", "drift", "train"})


@pytest.mark.parametrize("extra", JOB_EXTRAS)
def test_each_other_extra_provides_what_extras_py_says(tmp_path, mlci_wheel, extra):
    venv = lean_venv(tmp_path, mlci_wheel, extra)
    found = importable(venv, sorted(set(HEAVY) | EXTRA_MODULES[extra]))
    missing = [m for m in EXTRA_MODULES[extra] if not found[m]]
    assert not missing, f"mlci[{extra}] does not install {missing}"
    extra_heavy = [m for m in HEAVY if found[m] and m not in EXTRA_MODULES[extra]]
    assert not extra_heavy, f"mlci[{extra}] drags in {extra_heavy}"
