"""Fixtures for the data-check and drift tests: small frames written in every format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

ROWS = 100
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def base_frame(rows: int = ROWS) -> pl.DataFrame:
    """Clean data: every rule in the test contracts passes on it."""
    i = pl.int_range(rows, eager=True)
    return pl.DataFrame({
        "id": i.cast(pl.Int64),
        "amount": i.cast(pl.Float64),
        "qty": (i % 10).cast(pl.Int64),
        "code": pl.Series([f"AB-{n:03d}" for n in range(rows)]),
        "country": pl.Series(["DE", "FR", "IT"] * (rows // 3) + ["DE", "FR", "IT"][: rows % 3]),
        "ts": pl.Series([NOW.replace(tzinfo=None) - timedelta(hours=n) for n in range(rows)]).cast(pl.Datetime("us")),
    })


def write(frame: pl.DataFrame, path: Path) -> Path:
    """Write a frame as Parquet, CSV or NDJSON, chosen by the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_ndjson(path)
    return path


def junit_counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    cases = root.findall(".//testcase")
    return {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
        "declared_tests": int(root.get("tests")),
        "declared_failures": int(root.get("failures")),
    }


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def project(tmp_path, monkeypatch, clean_env):
    """An empty project directory as the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
