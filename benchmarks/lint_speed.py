"""Whole-process speed of `mlci lint` against check-jsonschema on GitLab's schema fixture corpus.

Every file of tests/lint/gitlab_yaml_tests is checked by both tools as a
whole process, alternating, so machine noise hits both equally:

    mlci lint FILE
    check-jsonschema --builtin-schema vendor.gitlab-ci --data-transform gitlab-ci FILE

Targets: the median mlci run (a typical file) takes at most 0.25 s, and at
most a third of check-jsonschema's median on the same files. Wall time is
the target; CPU time (user + system of the child) is printed beside it
because it is far less disturbed by other work on a shared machine.

Both tools run as installed, warm: one untimed run of each first writes the
bytecode a pip install would have compiled (PYTHONDONTWRITEBYTECODE is
cleared for the children) and mlci's compiled schema validator cache. The
first run with an empty validator cache is timed separately.

    python benchmarks/lint_speed.py [--rounds 3]
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
    args = parser.parse_args()
    files = sorted(CORPUS.rglob("*.yml"))
    if not files:
        sys.exit(f"no fixtures under {CORPUS}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    mlci, peer = _exe("mlci"), _exe("check-jsonschema")

    def mlci_cmd(path: Path) -> list[str]:
        return [mlci, "lint", str(path)]

    def peer_cmd(path: Path) -> list[str]:
        return [peer, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(path)]

    with tempfile.TemporaryDirectory() as cold_cache:
        cold_wall, cold_cpu = _run(mlci_cmd(files[0]), {**env, "MLCI_CACHE_DIR": cold_cache})
    _run(mlci_cmd(files[0]), env), _run(peer_cmd(files[0]), env)  # warm: bytecode and the validator cache

    times: dict[str, list[tuple[float, float]]] = {"mlci": [], "peer": []}
    for _ in range(args.rounds):
        for path in files:
            times["mlci"].append(_run(mlci_cmd(path), env))
            times["peer"].append(_run(peer_cmd(path), env))

    def median(tool: str, index: int) -> float:
        return statistics.median(sample[index] for sample in times[tool])

    mlci_wall, peer_wall = median("mlci", 0), median("peer", 0)
    mlci_cpu, peer_cpu = median("mlci", 1), median("peer", 1)
    ratio = mlci_wall / peer_wall
    print(f"corpus                 {len(files)} files x {args.rounds} rounds ({CORPUS.name})")
    print(f"mlci lint              median {mlci_wall * 1000:7.1f} ms wall  {mlci_cpu * 1000:7.1f} ms cpu")
    print(f"check-jsonschema       median {peer_wall * 1000:7.1f} ms wall  {peer_cpu * 1000:7.1f} ms cpu")
    print(f"mlci, empty cache      first  {cold_wall * 1000:7.1f} ms wall  {cold_cpu * 1000:7.1f} ms cpu")
    fast = mlci_wall <= TARGET_SECONDS
    print(f"mlci typical file      {mlci_wall:.3f} s  (target <= {TARGET_SECONDS:.2f} s)  {'OK' if fast else 'MISSED'}")
    close = ratio <= TARGET_RATIO
    print(f"ratio mlci/peer        {ratio:.3f} wall, {mlci_cpu / peer_cpu:.3f} cpu  "
          f"(target <= {TARGET_RATIO:.3f})  {'OK' if close else 'MISSED'}")
    return 0 if fast and close else 1


if __name__ == "__main__":
    sys.exit(main())
