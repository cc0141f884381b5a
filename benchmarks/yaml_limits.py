"""Hostile YAML: `mlci config show` on it vs a loader without limits, both as whole processes.

Three inputs: a 400-byte alias bomb (a billion values once expanded), a 6.4 MB mlci.yml, and 5,000
levels of nesting. The peer is what any consumer of plain PyYAML does: yaml.safe_load, then use the data
(here json.dumps, which walks it, as a schema validator would); it gets --peer-timeout seconds and is
reported as killed when it takes longer. mlci must answer each with exit 2; the target is on the time
mlci spends on the hostile file, i.e. its run minus its run on a one-line valid mlci.yml in the same
session (interpreter start and imports are the same in both): at most 0.5 s.

    python benchmarks/yaml_limits.py [--peer-timeout 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.5
PEER = "import json, yaml; json.dumps(yaml.safe_load(open('mlci.yml')))"

LAUGHS = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["model: {name: *a8}"]
) + "\n"
CASES = {
    "alias bomb (400 B)": LAUGHS,
    "6.4 MB mlci.yml": "".join(f"k{i}: {'y' * 60}\n" for i in range(100_000)),
    "5,000 levels of nesting": "model: " + "[" * 5000 + "]" * 5000 + "\n",
}


def _timed(cmd: list[str], cwd: Path, timeout: float) -> tuple[float | None, int | None]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None
    return time.perf_counter() - start, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-timeout", type=float, default=20.0, help="seconds before the peer is killed")
    args = parser.parse_args()
    ok = True
    mlci = [sys.executable, "-m", "mlci", "config", "show"]
    with tempfile.TemporaryDirectory(prefix="mlci-bench-yaml-") as tmp:
        root = Path(tmp)
        print(f"{'input':26} {'mlci (extra over a valid file)':>34} {'safe_load + use':>22}")
        for name, text in CASES.items():
            (root / "mlci.yml").write_text("model: {name: m}\n")
            baseline, _ = _timed(mlci, root, 60)
            (root / "mlci.yml").write_text(text)
            mine, code = _timed(mlci, root, 60)
            peer, _ = _timed([sys.executable, "-c", PEER], root, args.peer_timeout)
            extra = (mine - baseline) if mine is not None and baseline is not None else None
            passed = extra is not None and code == 2 and extra <= TARGET_SECONDS
            ok &= passed
            shown_peer = f"{peer:8.2f} s" if peer is not None else f"> {args.peer_timeout:g} s (killed)"
            shown_mine = (f"{mine:5.2f} s ({extra:+.2f} s) exit {code}" if extra is not None else "timed out")
            print(f"{name:26} {shown_mine:>34} {shown_peer:>22}  {'OK' if passed else 'MISSED'}")
    print(f"target: exit 2, and at most {TARGET_SECONDS:g} s more than on a valid one-line mlci.yml")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
