"""A throwaway project (mlci.yml, .gitlab-ci.yml including the real templates) for the runner tests."""

from __future__ import annotations

import copy
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR = Path(__file__).resolve().parent / "vendor"

# One pool of each kind the renderer knows: kubernetes on spot with a fallback, kubernetes on demand
# with several jobs per node, and an always-on docker host.
FLEET = {
    "prices": {
        "g5.xlarge": {"on-demand": 1.006, "spot": 0.45},
        "g5.12xlarge": {"on-demand": 5.672},
        "lab-box": {"on-demand": 0.25},
    },
    "pools": [
        {"name": "a10g", "tags": ["gpu"], "instance-type": "g5.xlarge", "gpu": {"type": "nvidia-a10g"},
         "max": 4, "idle-timeout": "10m", "max-job-lifetime": "6h", "capacity": "spot"},
        {"name": "quad", "tags": ["gpu", "multi-gpu"], "instance-type": "g5.12xlarge",
         "gpu": {"type": "nvidia-a10g", "count": 2}, "gpus-per-node": 4, "max": 2, "idle-timeout": "15m",
         "max-job-lifetime": "12h"},
        {"name": "lab", "tags": ["gpu", "lab"], "executor": "docker", "instance-type": "lab-box",
         "gpu": {"type": "nvidia-rtx-4090", "count": 2}, "min": 1, "max": 1, "always-on": True,
         "idle-timeout": "30m", "max-job-lifetime": "8h"},
    ],
}

CI = """\
stages: [test, deploy]
include:
  - local: ci_templates/mlci-train.yml
    inputs:
      tags: [gpu]
      timeout: 1h
  - local: ci_templates/mlci-gate.yml
"""


class Project:
    def __init__(self, root: Path):
        self.root = root
        (root / ".git").mkdir()
        shutil.copytree(REPO_ROOT / "ci_templates", root / "ci_templates")
        self.runners = copy.deepcopy(FLEET)
        self.write_ci(CI)

    def write_ci(self, text: str) -> Path:
        path = self.root / ".gitlab-ci.yml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def write_config(self, runners: dict | None = None, **sections) -> Path:
        data = {"version": 1, "project": {"name": "demo"}, "gitlab": {"url": "https://gitlab.example.com"},
                # what the included train and gate templates need, so lint reports only the runner findings
                "train": {"command": "python train.py"}, "gate": {"rules": [{"metric": "accuracy", "min": 0.8}]}}
        data.update(sections)
        data["runners"] = self.runners if runners is None else runners
        path = self.root / "mlci.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def config(self):
        from mlci.config import load_effective

        return load_effective(Path("mlci.yml"), env={})  # the tests run in self.root

    def fleet(self):
        from mlci.runners.model import load_fleet

        return load_fleet(self.config())

    def render(self, runners: dict | None = None, **sections):
        """(Rendered, CrossCheck) for the current mlci.yml and pipeline, as `mlci runners render` makes them."""
        from mlci.lint.resolve import load_pipeline
        from mlci.runners.crosscheck import crosscheck, jobs_from_pipeline
        from mlci.runners.render import render_fleet

        self.write_config(runners, **sections)
        config = self.config()
        from mlci.runners.model import load_fleet

        fleet = load_fleet(config)
        jobs = jobs_from_pipeline(load_pipeline(self.root / ".gitlab-ci.yml", root=self.root), root=self.root)
        check = crosscheck(fleet, jobs, lambda p: config.where(p, key=True))
        return render_fleet(fleet, check), check

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text(encoding="utf-8")


@pytest.fixture
def project(tmp_path, clean_env, monkeypatch) -> Project:
    monkeypatch.chdir(tmp_path)
    return Project(tmp_path)


def pool(runners: dict, name: str) -> dict:
    return next(p for p in runners["pools"] if p["name"] == name)
