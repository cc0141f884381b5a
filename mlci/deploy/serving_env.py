"""An isolated Python environment for MLServer, built by uv from the model's own requirements.

MLServer and its MLflow runtime pin web-stack versions (starlette, fastapi,
protobuf) that differ from what mlci's own environment carries, so the model
server gets its own virtualenv, like `mlflow models serve --env-manager uv`:
the registry version's requirements.txt plus the MLServer pins. Environments
are cached by a hash of (interpreter, requirements) and built once; a lock
keeps two deploys on one machine from building the same one twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

READY_MARKER = ".mlci-ready"
DEFAULT_CACHE = Path("~/.cache/mlci/serving-envs")
CACHE_VARIABLE = "MLCI_SERVING_ENV_CACHE"


class EnvBuildFailed(Exception):
    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


def cache_dir(env: dict[str, str], configured: str | None) -> Path:
    return Path(configured or env.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser()


def read_requirements(model_dir: Path) -> list[str]:
    """The model's pinned requirements (MLflow writes requirements.txt next to MLmodel)."""
    path = model_dir / "requirements.txt"
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        # `-r`/`-c` lines point at files inside the artifact folder; keep them resolvable.
        if line.startswith(("-r ", "-c ")):
            flag, target = line.split(None, 1)
            line = f"{flag} {(model_dir / target).resolve()}"
        if line:
            lines.append(line)
    return lines


def env_key(python: str, requirements: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(os.path.realpath(python).encode())
    for line in sorted(set(requirements)):
        digest.update(b"\n" + line.encode())
    return digest.hexdigest()[:16]


def uv_command(env: dict[str, str]) -> list[str]:
    found = shutil.which("uv", path=env.get("PATH", os.defpath))
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    raise EnvBuildFailed(
        "uv is needed to build MLServer's serving environment and is not installed "
        "(pip install uv), or set mlserver.env-manager: local with MLServer installed next to mlci"
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_env(
    requirements: Sequence[str],
    *,
    root: Path,
    env: dict[str, str],
    python: str | None = None,
    log: Callable[[str], None] = lambda _line: None,
    timeout: float = 1800,
) -> Path:
    """The interpreter of a serving environment holding `requirements`; built on first use."""
    python = python or sys.executable
    key = env_key(python, requirements)
    target = root / key
    interpreter = target / "bin" / "python"
    if (target / READY_MARKER).exists():
        return interpreter
    with _locked(root / f"{key}.lock"):
        if (target / READY_MARKER).exists():
            return interpreter
        shutil.rmtree(target, ignore_errors=True)  # a build that died half-way
        uv = uv_command(env)
        requirements_file = root / f"{key}.requirements.txt"
        requirements_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        log(f"building the serving environment {target} with uv ({len(requirements)} requirements)")
        child_env = {**env, "VIRTUAL_ENV": str(target)}
        for step in (
            [*uv, "venv", "--quiet", "--python", python, str(target)],
            [*uv, "pip", "install", "--quiet", "--python", str(interpreter), "-r", str(requirements_file)],
        ):
            try:
                done = subprocess.run(step, env=child_env, capture_output=True, text=True, timeout=timeout,
                                      stdin=subprocess.DEVNULL, check=False)
            except subprocess.TimeoutExpired as exc:
                shutil.rmtree(target, ignore_errors=True)
                raise EnvBuildFailed(f"`{' '.join(step[:3])}` did not finish within {timeout:g} s") from exc
            if done.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                output = (done.stdout + done.stderr).strip()
                raise EnvBuildFailed(f"`{' '.join(step[:3])}` exited with code {done.returncode}", output[-3000:])
        (target / READY_MARKER).write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return interpreter
