"""Which optional extra provides which third-party module, and which extra each command needs.

`pip install mlci` is the light core (CLI, mlci.yml, init, generate, lint).
Each CI job installs the core plus the extra of its command (`mlci[data]`,
`mlci[train]`, ...; the templates name it). When a command reaches for a
module its extra did not install, cli.main turns the ModuleNotFoundError into
one clear message with the exact install line, instead of a traceback.
pyproject.toml is the truth for what each extra installs; tests/test_extras.py
keeps these tables in step with it and tries each extra in a real lean venv.
"""

from __future__ import annotations

from mlci.errors import MlciError

# top-level import name -> the smallest extra that installs it
MODULE_EXTRAS: dict[str, str] = {
    "polars": "data",
    "numpy": "drift",
    "scipy": "drift",
    "matplotlib": "report",
    "mlflow": "train",
    "psutil": "train",
    "requests": "train",
    "pandas": "gate",
    "gitlab": "gitlab",
    "croniter": "gitlab",
    "pynvml": "gpu",
    "tomli_w": "runners",
    "optuna": "tune",
    "cmaes": "tune",
    "onnx": "optimize",
    "onnxruntime": "optimize",
    "skl2onnx": "optimize",
    "onnxmltools": "optimize",
    "onnxscript": "optimize",
    # what the full `mlflow` package adds to mlflow-skinny: the sqlite/SQL stores and the server
    "alembic": "mlflow",
    "flask": "mlflow",
    "obstore": "s3",
    "deltalake": "delta",
    "pyiceberg": "iceberg",
    "duckdb": "duckdb",
    "pyspark": "spark",
    "sqlalchemy": "sql",
    "psycopg": "sql",
    # sqlglot comes with every engine extra; duckdb's is the lightest to name
    "sqlglot": "duckdb",
    "statsmodels": "canary",
}

# command (with its sub-command where they differ) -> the extra its template job installs
COMMAND_EXTRAS: dict[str, str] = {
    "data check": "data",
    "data drift": "drift",
    "train": "train",
    "train-select": "train",
    "gate": "gate",
    "report": "report",
    "deploy": "deploy",
    "smoke-test": "deploy",
    "rollback": "deploy",
    "retrain": "retrain",
    "schedule": "gitlab",
    "trigger": "gitlab",
    "tune": "tune",
    "optimize": "optimize",
    "monitor": "monitor",
    "runners": "runners",
    "canary": "canary",
}

# extra -> the import names it provides, including what its own mlci[...] references bring
EXTRA_MODULES: dict[str, frozenset[str]] = {
    "gitlab": frozenset({"gitlab", "requests", "croniter"}),
    "data": frozenset({"polars"}),
    "drift": frozenset({"polars", "numpy", "scipy", "matplotlib", "mlflow", "requests"}),
    "train": frozenset({"mlflow", "psutil", "requests"}),
    "gate": frozenset({"mlflow", "polars", "pandas", "numpy", "requests"}),
    "report": frozenset({"mlflow", "polars", "matplotlib", "numpy", "gitlab", "croniter", "requests"}),
    "deploy": frozenset({"mlflow", "pandas", "numpy", "polars", "psutil", "requests"}),
    "retrain": frozenset({"mlflow", "pandas", "numpy", "polars", "psutil", "requests", "gitlab", "croniter"}),
    "mlflow": frozenset({"mlflow", "sqlalchemy", "alembic", "flask", "pandas", "numpy", "scipy", "matplotlib",
                         "requests"}),
    "gpu": frozenset({"pynvml"}),
    "runners": frozenset({"tomli_w"}),
    "tune": frozenset({"optuna", "psycopg", "sqlalchemy", "cmaes", "matplotlib", "numpy", "mlflow", "psutil",
                       "requests"}),
    "optimize": frozenset({"onnx", "onnxruntime", "skl2onnx", "onnxmltools", "onnxscript", "mlflow", "pandas",
                           "numpy", "scipy", "requests"}),
    "monitor": frozenset({"mlflow", "polars", "pyarrow", "numpy", "scipy", "matplotlib", "pandas", "psutil",
                          "requests", "gitlab", "croniter"}),
    "canary": frozenset({"statsmodels", "scipy", "numpy", "mlflow", "pandas", "polars", "psutil", "requests"}),
    "mlserver": frozenset({"uv"}),
    "s3": frozenset({"obstore"}),
    "delta": frozenset({"deltalake"}),
    "iceberg": frozenset({"pyiceberg", "pyarrow"}),
    "duckdb": frozenset({"duckdb", "sqlglot"}),
    "spark": frozenset({"pyspark", "sqlglot"}),
    "sql": frozenset({"sqlalchemy", "sqlglot", "psycopg"}),
}

# URI schemes of the stores that only the full `mlflow` package can open (SQLAlchemy underneath)
DATABASE_STORE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})


class MissingExtra(MlciError):
    """A command needs a package that the installed extras do not include."""


def command_key(args) -> str:
    """'data drift', 'train', ...: the command and, for the commands that have one, its sub-command."""
    command = getattr(args, "command", "") or ""
    sub = getattr(args, "data_command", None) if command == "data" else None
    return f"{command} {sub}" if sub else command


def extra_for(module: str, command: str) -> str | None:
    """The extra to install: the command's own when it provides `module`, else the module's smallest."""
    own = COMMAND_EXTRAS.get(command) or COMMAND_EXTRAS.get(command.split(" ")[0])
    if own and module in EXTRA_MODULES.get(own, ()):
        return own
    if module in EXTRA_MODULES["mlflow"] - EXTRA_MODULES["train"] and "mlflow" in EXTRA_MODULES.get(own or "", ()):
        return "mlflow"  # MLflow reached for what only the full package brings (a sqlite or SQL store)
    return MODULE_EXTRAS.get(module)


def install_line(extra: str) -> str:
    return f"pip install 'mlci[{extra}]' (or uv pip install 'mlci[{extra}]')"


def missing_extra(exc: ModuleNotFoundError, command: str) -> MissingExtra | None:
    """The MissingExtra for `exc`, or None when the module is not one of ours to explain."""
    top_level = (exc.name or "").split(".")[0]
    extra = extra_for(top_level, command)
    if extra is None:
        return None
    return MissingExtra(
        f"`mlci {command}` needs the Python package '{top_level}', which is not installed",
        hint=f"install the '{extra}' extra: {install_line(extra)}",
    )


def check_tracking_store(uri: str) -> None:
    """Refuse, with the install line, a database store URI when only mlflow-skinny is installed.

    mlflow-skinny talks to a tracking server; sqlite:// and the SQL stores need
    SQLAlchemy and Alembic from the full package. Without this check MLflow
    fails with "unsupported URI" and no word about what to install.
    """
    import importlib.util

    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if scheme not in DATABASE_STORE_SCHEMES:
        return
    if importlib.util.find_spec("sqlalchemy") is not None:
        return
    raise MissingExtra(
        f"the MLflow store {scheme}:// needs the full MLflow package; only mlflow-skinny "
        "(the client for a tracking server) is installed",
        hint=f"point MLFLOW_TRACKING_URI at your tracking server, or install the 'mlflow' extra: "
        f"{install_line('mlflow')}",
    )
