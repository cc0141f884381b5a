"""Startup cost of `mlci --help` against `mlflow --version`, measured in one loop.

Both are run as whole processes, alternating, so machine noise hits both
equally. Target: mlci's median is at most 10% of mlflow's.

    python benchmarks/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 0.10


def _exe(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found; run `make test` or install the dev extra first")
    return found


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    mlci_cmd = [_exe("mlci"), "--help"]
    mlflow_cmd = [_exe("mlflow"), "--version"]
    _time(mlci_cmd), _time(mlflow_cmd)  # warm the page cache for both
    mlci_times, mlflow_times = [], []
    for _ in range(args.runs):
        mlci_times.append(_time(mlci_cmd))
        mlflow_times.append(_time(mlflow_cmd))
    mlci_median = statistics.median(mlci_times)
    mlflow_median = statistics.median(mlflow_times)
    ratio = mlci_median / mlflow_median
    print(f"runs per command      {args.runs}")
    print(f"mlci --help           median {mlci_median * 1000:8.1f} ms")
    print(f"mlflow --version      median {mlflow_median * 1000:8.1f} ms")
    verdict = "OK" if ratio <= TARGET_RATIO else "MISSED"
    print(f"ratio mlci/mlflow     {ratio:.3f}  (target <= {TARGET_RATIO:.2f})  {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
