"""Lazy polars scans of every source kind: local or object-store files, folders, Delta and Iceberg tables.

Object stores are read by polars' own cloud readers (credentials from the
environment or the instance role). Tables are opened at one exact version:
the pinned one, or the current one resolved once here, so the check, the
lineage and the fingerprint all name the same snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mlci.data.location import Location


@dataclass(frozen=True)
class OpenedTable:
    frame: pl.LazyFrame
    version: int  # Delta version or Iceberg snapshot id actually read
    label: str  # canonical source string with the pin
    rows: int | None = None  # from table metadata, when it says
    size_bytes: int | None = None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def scan_path(path: Path | str, fmt: str, *, folder: bool = False, text_columns: tuple[str, ...] = (),
              infer_rows: int = 10_000) -> pl.LazyFrame:
    """A lazy scan of one file, or of every file in a folder (Parquet folders add hive partition columns).

    `text_columns` are read as raw strings so bad values can be counted, not rejected.
    """
    source = str(path)
    declared = {name: pl.String for name in text_columns}
    if fmt == "parquet":
        return pl.scan_parquet(source, hive_partitioning=True if folder else None)
    if fmt == "csv":
        return pl.scan_csv(source, schema_overrides=declared, try_parse_dates=True, infer_schema_length=infer_rows)
    if declared:
        # NDJSON rejects overrides for absent fields, so infer once to see which exist.
        present = pl.scan_ndjson(source, infer_schema_length=infer_rows).collect_schema()
        declared = {name: dtype for name, dtype in declared.items() if name in present}
    return pl.scan_ndjson(source, schema_overrides=declared or None, infer_schema_length=infer_rows)


def open_table(location: Location, *, where: str | None = None) -> OpenedTable:
    """A lazy polars scan of the table at its pinned (or current, resolved once) version."""
    from mlci.adapters.tables import iceberg_table, snapshot, table_error

    snap = snapshot(location, where=where, with_files=False)
    try:
        if location.table_format == "delta":
            frame = pl.scan_delta(location.target, version=snap.version)
        else:
            frame = pl.scan_iceberg(iceberg_table(location), snapshot_id=snap.version)
        frame.collect_schema()
    except Exception as exc:  # deltalake/pyiceberg/polars errors, plus OSError from the store
        raise table_error(location, exc, where) from None
    return OpenedTable(frame=frame, version=snap.version, label=snap.location.canonical(), rows=snap.rows,
                       size_bytes=snap.size_bytes)
