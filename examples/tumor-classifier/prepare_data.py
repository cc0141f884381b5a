"""Build the example's data snapshots from scikit-learn's bundled breast-cancer set.

No download: the data ships inside scikit-learn. Two synthetic columns make
the contract and the slices realistic: the collecting `site` and the
`collected_at` timestamp.

    python prepare_data.py [--out data] [--variant clean|drifted|bad] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

SITES = ["north", "south", "east"]


def load_frame(seed: int) -> pd.DataFrame:
    raw = load_breast_cancer(as_frame=True)
    frame = raw.frame.rename(columns=lambda c: c.replace(" ", "_"))
    rng = np.random.default_rng(seed)
    frame.insert(0, "sample_id", np.arange(1, len(frame) + 1, dtype=np.int64))
    frame["site"] = rng.choice(SITES, size=len(frame))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    frame["collected_at"] = [now - timedelta(hours=int(h)) for h in rng.integers(1, 24 * 20, size=len(frame))]
    return frame


def make_variant(frame: pd.DataFrame, variant: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    if variant == "drifted":
        # New scanner calibration: sizes read ~25% larger, textures noisier.
        out = frame.copy()
        for column in ("mean_radius", "mean_perimeter", "mean_area", "worst_radius", "worst_area"):
            out[column] = out[column] * 1.25
        out["mean_texture"] = out["mean_texture"] + rng.normal(4.0, 2.0, len(out))
        return out
    if variant == "bad":
        # A broken export: negative radii and an unknown site.
        out = frame.copy()
        out.loc[out.index[:7], "mean_radius"] = -1.0
        out.loc[out.index[7:10], "site"] = "unknown"
        return out
    return frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="data")
    # EXAMPLE_DATA_VARIANT lets a scheduled pipeline simulate a drifted data delivery.
    parser.add_argument(
        "--variant", choices=["clean", "drifted", "bad"], default=os.environ.get("EXAMPLE_DATA_VARIANT", "clean")
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame = make_variant(load_frame(args.seed), args.variant, args.seed)
    frame.to_parquet(out / "patients.parquet", index=False)
    print(f"wrote {len(frame)} rows ({args.variant}) to {out / 'patients.parquet'}")


if __name__ == "__main__":
    main()
