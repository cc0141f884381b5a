"""Whole-process speed of `mlci lint` against check-jsonschema on GitLab's schema fixture corpus.

Every file of tests/lint/gitlab_yaml_tests is checked by both tools as a
whole process, alternating, so machine noise hits both equally:

    mlci lint FILE
    check-jsonschema --builtin-schema vendor.gitlab-ci --data-transform gitlab-ci FILE

Targets: the median mlci run on a typical file - a valid pipeline, the
positive fixtures - takes at most 0.25 s, and at most a third of
check-jsonschema's median on the same files. Invalid files (the negative
fixtures) are timed and printed too: there both tools explain errors with
jsonschema. Wall time is the target; CPU time (user + system of the child)
is printed beside it because it is far less disturbed by other work on a
shared machine.

Both tools run as a user installs them: uv builds mlci's wheel and installs
it, with the check-jsonschema version of this environment, into one fresh
virtualenv (a developer's editable install adds an import finder to every
interpreter start). `--here` runs the tools of this environment instead, as
does a machine without uv. Both run warm: one untimed run of each first
writes the bytecode a pip install would have compiled (PYTHONDONTWRITEBYTECODE
is cleared for the children) and mlci's compiled schema validator cache. The
first run with an empty validator cache is timed separately.

    python benchmarks/lint_speed.py [--rounds 3] [--here]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.25
TARGET_RATIO = 1 / 3
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "lint" / "gitlab_yaml_tests"


def _exe(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found; run `make test` or install the dev extra first")
    return found


def _installed_tools(work: Path) -> tuple[str, str] | None:
    """mlci (from its wheel) and check-jsonschema in a fresh virtualenv; None without uv."""
    from importlib.metadata import version

    beside = Path(sys.executable).with_name("uv")
    uv = str(beside) if beside.exists() else shutil.which("uv")
    if uv is None:
        return None
    repo = Path(__file__).resolve().parent.parent
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([uv, "build", "--quiet", "--wheel", "--out-dir", str(work / "dist"), str(repo)], **quiet)
    (wheel,) = (work / "dist").glob("mlci-*.whl")
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(work / "venv")], **quiet)
    python = work / "venv" / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), str(wheel),
                    f"check-jsonschema=={version('check-jsonschema')}"], **quiet)
    return str(python.with_name("mlci")), str(python.with_name("check-jsonschema"))


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each tool per file")
    parser.add_argument("--here", action="store_true", help="run this environment's mlci and check-jsonschema")
    args = parser.parse_args()
    files = sorted(CORPUS.rglob("*.yml"))
    if not files:
        sys.exit(f"no fixtures under {CORPUS}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="mlci-lint-bench-") as work:
        tools = None if args.here else _installed_tools(Path(work))
        where = "a fresh virtualenv (mlci's wheel)" if tools else "this environment"
        mlci, peer = tools or (_exe("mlci"), _exe("check-jsonschema"))
        return _measure(files, mlci, peer, env, args.rounds, where)


def _measure(files: list[Path], mlci: str, peer: str, env: dict[str, str], rounds: int, where: str) -> int:

    def mlci_cmd(path: Path) -> list[str]:
        return [mlci, "lint", str(path)]

    def peer_cmd(path: Path) -> list[str]:
        return [peer, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(path)]

    with tempfile.TemporaryDirectory() as cold_cache:
        cold_wall, cold_cpu = _run(mlci_cmd(files[0]), {**env, "MLCI_CACHE_DIR": cold_cache})
    _run(mlci_cmd(files[0]), env), _run(peer_cmd(files[0]), env)  # warm: bytecode and the validator cache

    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for path in files:
            kind = "valid" if "positive_tests" in path.parts else "invalid"
            times.setdefault(("mlci", kind), []).append(_run(mlci_cmd(path), env))
            times.setdefault(("peer", kind), []).append(_run(peer_cmd(path), env))

    def median(tool: str, kind: str, index: int) -> float:
        return statistics.median(sample[index] for sample in times[(tool, kind)])

    print(f"corpus                 {len(files)} files x {rounds} rounds ({CORPUS.name}); tools from {where}")
    for kind in ("valid", "invalid"):
        count = len(times[("mlci", kind)]) // rounds
        for tool, label in (("mlci", "mlci lint"), ("peer", "check-jsonschema")):
            print(f"{label:<17} {kind:<7} median {median(tool, kind, 0) * 1000:7.1f} ms wall  "
                  f"{median(tool, kind, 1) * 1000:7.1f} ms cpu  ({count} files)")
        print(f"ratio mlci/peer   {kind:<7} {median('mlci', kind, 0) / median('peer', kind, 0):.3f} wall, "
              f"{median('mlci', kind, 1) / median('peer', kind, 1):.3f} cpu")
    print(f"mlci, empty cache      first  {cold_wall * 1000:7.1f} ms wall  {cold_cpu * 1000:7.1f} ms cpu")
    typical = median("mlci", "valid", 0)
    ratio = typical / median("peer", "valid", 0)
    fast = typical <= TARGET_SECONDS
    print(f"typical (valid) file   {typical:.3f} s  (target <= {TARGET_SECONDS:.2f} s)  {'OK' if fast else 'MISSED'}")
    close = ratio <= TARGET_RATIO
    print(f"typical ratio          {ratio:.3f}  (target <= {TARGET_RATIO:.3f})  {'OK' if close else 'MISSED'}")
    return 0 if fast and close else 1


if __name__ == "__main__":
    sys.exit(main())
