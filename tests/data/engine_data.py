"""The benchmark's data (9 columns, planted violations) at test size, and ways to load it into each engine."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[2]
ROWS = 12_000


@cache
def benchmark():
    spec = importlib.util.spec_from_file_location("mlci_bench_data_check", REPO_ROOT / "benchmarks" / "data_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_contract(path: Path) -> Path:
    path.write_text(benchmark().CONTRACT)
    return path


def make_parquet(path: Path, rows: int = ROWS, *, bad: bool = True) -> Path:
    benchmark().generate(path, rows, bad=bad)
    return path


PG_TYPES = {"Int64": "bigint", "Float64": "double precision", "String": "text", "Datetime": "timestamp"}


def load_into_postgres(url: str, table: str, parquet: Path) -> None:
    """CREATE TABLE with the Parquet file's types, then COPY its rows in."""
    import psycopg

    frame = pl.read_parquet(parquet)
    columns = ", ".join(f'"{name}" {PG_TYPES[type(dtype).__name__]}' for name, dtype in frame.schema.items())
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn, conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')
        cur.execute(f'CREATE TABLE "{table}" ({columns})')
        with cur.copy(f'COPY "{table}" FROM STDIN (FORMAT csv, HEADER true)') as copy:
            copy.write(frame.write_csv(datetime_format="%Y-%m-%d %H:%M:%S%.f").encode())
