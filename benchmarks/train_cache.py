"""A `mlci train` cache hit against the full run it re-uses, both as whole processes.

The training command sleeps for --sleep seconds (30 by default), standing in
for real training. Set-up first creates the sqlite store (its one-off
migrations are not part of either figure); then one full run is timed, then
--hits cache hits of the same inputs. Target: the median hit takes at most
10% of the full run.

    python benchmarks/train_cache.py [--sleep 30] [--hits 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 0.10


def _project(root: Path) -> None:
    (root / "data").mkdir()
    rows = "\n".join(f"{i},{i % 7},{i * 0.5}" for i in range(20_000))
    (root / "data" / "train.csv").write_text(f"id,group,value\n{rows}\n")
    (root / "train.py").write_text("import sys, time\ntime.sleep(float(sys.argv[1]))\nprint('trained')\n")
    (root / "mlci.yml").write_text("train:\n  data: [data/train.csv]\n  params: {lr: 0.01, epochs: 10}\n")
    (root / ".gitignore").write_text(".mlci/\nmlci-out/\n")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=bench", "-c", "user.email=b@example.com",
                                                 "commit", "-q", "-m", "project"]):
        subprocess.run(["git", *args], cwd=root, check=True)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MLCI_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def _train(root: Path, seconds: float, *extra: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "mlci", "train", *extra, "--", sys.executable, "train.py", str(seconds)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"mlci train failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=30.0, help="seconds the training command takes")
    parser.add_argument("--hits", type=int, default=5, help="cache hits to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlci-bench-train-") as tmp:
        root = Path(tmp)
        _project(root)
        _train(root, 0)  # creates and migrates the store; a different fingerprint from the timed run
        full, out = _train(root, args.sleep)
        if "cache hit" in out:
            sys.exit("the timed full run was a cache hit; the benchmark set-up is wrong")
        hits = []
        for _ in range(args.hits):
            elapsed, out = _train(root, args.sleep)
            if "cache hit" not in out:
                sys.exit(f"expected a cache hit, got:\n{out}")
            hits.append(elapsed)
    hit = statistics.median(hits)
    ratio = hit / full
    print(f"training command      sleep {args.sleep:g} s")
    print(f"full run              {full:8.2f} s")
    print(f"cache hit             median {hit:6.3f} s  (min {min(hits):.3f}, max {max(hits):.3f}, n={len(hits)})")
    verdict = "OK" if ratio <= TARGET_RATIO else "MISSED"
    print(f"ratio hit/full        {ratio:.4f}  (target <= {TARGET_RATIO:.2f})  {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
