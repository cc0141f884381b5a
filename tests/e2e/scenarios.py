"""Pipeline scenarios shared by the end-to-end tests, `make demo` and the benchmark."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import Workspace

MAIN_PUSH = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"}
SCHEDULE = {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"}


def set_training_default(workspace: Workspace, *, c: float | None = None, variant: str | None = None) -> None:
    """A code change to train.py, the way a data scientist's commit would change the model."""
    path = workspace.root / "train.py"
    text = path.read_text()
    if c is not None:
        text = re.sub(r'os.environ.get\("MLCI_PARAM_C", "[\d.]+"\)', f'os.environ.get("MLCI_PARAM_C", "{c}")', text)
    if variant is not None:
        text = re.sub(r'os.environ.get\("EXAMPLE_VARIANT", "\w+"\)', f'os.environ.get("EXAMPLE_VARIANT", "{variant}")',
                      text)
    path.write_text(text)


def prepare_data(workspace: Workspace, variant: str) -> None:
    subprocess.run(
        [sys.executable, "prepare_data.py", "--out", "data", "--variant", variant],
        cwd=workspace.root, check=True, capture_output=True,
    )


def served(workspace: Workspace, environment: str) -> dict:
    """What the environment serves: the state file, checked against the live process's own command line."""
    state = json.loads((workspace.root / ".mlci" / "serve" / f"{environment}.json").read_text())
    cmdline = Path(f"/proc/{state['pid']}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    state["process-model-uri"] = next(
        (part for part in cmdline.split() if part.startswith("models:/")), ""
    )
    return state


def dotenv(workspace: Workspace, name: str) -> dict[str, str]:
    from mlci.outputs.dotenv import read_dotenv

    return read_dotenv(workspace.out_dir / name)
