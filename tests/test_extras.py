"""The extras: pyproject.toml, mlci/extras.py and the templates tell the same story.

pyproject.toml says what each extra installs; mlci/extras.py says which extra
provides which module and which extra each command needs (the message a user
sees when one is missing); each template job installs its command's extra.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

from mlci.extras import (
    COMMAND_EXTRAS,
    EXTRA_MODULES,
    MODULE_EXTRAS,
    MissingExtra,
    check_tracking_store,
    extra_for,
    missing_extra,
)

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
# distribution -> the top-level import name mlci uses
IMPORT_NAMES = {"python-gitlab": "gitlab", "mlflow-skinny": "mlflow", "nvidia-ml-py": "pynvml", "pyyaml": "yaml"}
UMBRELLAS = {"all", "dev"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()


def distributions(extra: str) -> set[str]:
    """What `mlci[extra]` lists, following its own mlci[...] references."""
    found: set[str] = set()
    for requirement in EXTRAS[extra]:
        if _name(requirement) == "mlci":
            for inner in re.search(r"\[(.*?)\]", requirement)[1].split(","):
                found |= distributions(inner.strip())
        else:
            found.add(_name(requirement))
    return found


def test_every_stage_extra_is_described_in_extras_py():
    assert set(EXTRAS) - UMBRELLAS == set(EXTRA_MODULES)


@pytest.mark.parametrize("extra", sorted(EXTRA_MODULES))
def test_an_extra_provides_every_module_it_lists_directly(extra):
    direct = {IMPORT_NAMES.get(dist, dist.replace("-", "_")) for dist in distributions(extra)}
    assert direct <= EXTRA_MODULES[extra], f"extras.py misses what mlci[{extra}] installs"


def test_each_module_names_an_extra_that_provides_it():
    for module, extra in MODULE_EXTRAS.items():
        assert module in EXTRA_MODULES[extra], (module, extra)


def test_each_command_names_an_existing_extra():
    assert set(COMMAND_EXTRAS.values()) <= set(EXTRA_MODULES)


def test_all_holds_every_stage_extra_and_dev_holds_all():
    assert distributions("all") >= set().union(*(distributions(e) for e in EXTRA_MODULES))
    assert "mlci[all]" in EXTRAS["dev"]


def test_the_core_stays_light():
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    heavy = {"mlflow", "mlflow-skinny", "polars", "pyarrow", "pandas", "numpy", "scipy", "matplotlib",
             "python-gitlab", "check-jsonschema"}
    assert not core & heavy


def test_the_command_extra_wins_when_it_provides_the_module():
    assert extra_for("matplotlib", "data drift") == "drift"  # not 'report', the module's smallest extra
    assert extra_for("gitlab", "report") == "report"
    assert extra_for("gitlab", "lint") == "gitlab"  # `mlci lint --server`: the core has no GitLab client
    assert extra_for("sqlalchemy", "gate") == "mlflow"


def test_the_message_names_the_subcommand_and_its_install_line():
    err = missing_extra(ModuleNotFoundError("No module named 'scipy'", name="scipy"), "data drift")
    assert err.message == "`mlci data drift` needs the Python package 'scipy', which is not installed"
    assert "pip install 'mlci[drift]'" in err.hint


def test_a_database_store_without_the_full_mlflow_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sqlalchemy" else real(name, *a))
    with pytest.raises(MissingExtra) as caught:
        check_tracking_store("sqlite:////tmp/secret-path/mlflow.db")
    assert "pip install 'mlci[mlflow]'" in caught.value.hint
    assert "secret-path" not in caught.value.message
    check_tracking_store("https://user:token@mlflow.example.com")  # a server: skinny is enough
    check_tracking_store("databricks")


def test_a_database_store_with_the_full_mlflow_passes():
    check_tracking_store("postgresql+psycopg2://db/mlflow")
