"""Which optional extra provides which third-party module.

Each CI job installs only the extra its command needs (`mlci[data]`,
`mlci[train]`, ...). When a command reaches for a module its extra did not
install, cli.main turns the ModuleNotFoundError into one clear message with
the exact install line, instead of a traceback.
"""

from __future__ import annotations

from mlci.errors import MlciError

# top-level import name -> the extra that installs it
MODULE_EXTRAS: dict[str, str] = {
    "polars": "data",
    "pyarrow": "data",
    "matplotlib": "report",
    "mlflow": "train",
    "psutil": "train",
    "pynvml": "gpu",
    "tomli_w": "runners",
    "optuna": "tune",
    "psycopg": "tune",
    "cmaes": "tune",
    "onnx": "optimize",
    "onnxruntime": "optimize",
    "skl2onnx": "optimize",
    "onnxscript": "optimize",
    "statsmodels": "canary",
    "scipy": "canary",
}


class MissingExtra(MlciError):
    """A command needs a package that the installed extras do not include."""


def missing_extra(exc: ModuleNotFoundError, command: str) -> MissingExtra | None:
    """The MissingExtra for `exc`, or None when the module is not one of ours to explain."""
    top_level = (exc.name or "").split(".")[0]
    extra = MODULE_EXTRAS.get(top_level)
    if extra is None:
        return None
    return MissingExtra(
        f"`mlci {command}` needs the Python package '{top_level}', which is not installed",
        hint=f"install the '{extra}' extra: pip install 'mlci[{extra}]' (or uv pip install 'mlci[{extra}]')",
    )
