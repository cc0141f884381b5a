"""The data-check benchmark runs end to end on a small file (the real figures come from `make bench`-style runs)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_benchmark_runs_at_10k_rows(repo_root, tmp_path):
    done = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "data_check.py"), "--rows", "10000", "--runs", "1",
         "--skip-big", "--skip-engines", "--skip-s3", "--no-targets"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for line in ("10,000 rows x 9 columns, valid data", "10,000 rows x 9 columns, 30 planted violations of 10 kinds",
                 "mlci/pandera wall", "mlci/dataframely wall", "mlci/fused wall", "mlci/pandera RSS"):
        assert line in out, out
    for tool in ("mlci", "pandera", "dataframely", "fused"):
        assert out.count(f"  {tool:<12} wall") == 2, out
    # both paths are judged: four verdict lines each
    assert out.count("(target") == 8, out
