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

from mlci.data.location import Location, is_iceberg_metadata, safe_url
from mlci.errors import ConfigError, ExternalServiceError


@dataclass(frozen=True)
class OpenedTable:
    frame: pl.LazyFrame
    version: int  # Delta version or Iceberg snapshot id actually read
    label: str  # canonical source string with the pin
    rows: int | None = None  # from table metadata, when it says
    size_bytes: int | None = None
    files: tuple[str, ...] = ()  # data file URIs at that version (for engines that read files)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scrubbed(exc: BaseException) -> str:
    from mlci.adapters.object_store import scrub

    return scrub(first_line(exc))


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
    if location.table_format == "delta":
        return _open_delta(location, where)
    return _open_iceberg(location, where)


def _table_error(location: Location, exc: BaseException, where: str | None) -> Exception:
    from mlci.adapters.object_store import credential_hint, looks_unreachable

    text = _scrubbed(exc)
    if location.remote and looks_unreachable(text):
        return ExternalServiceError(f"{location.table_format} table", safe_url(location.target), text,
                                    hint=credential_hint(location.scheme))
    return ConfigError(f"cannot open {location.table_format} table {safe_url(location.target)!r}: {text}",
                       location=where or location.text)


def _open_delta(location: Location, where: str | None) -> OpenedTable:
    from deltalake import DeltaTable

    try:
        table = DeltaTable(location.target, version=location.pin)
        version = table.version()
        actions = table.get_add_actions(flatten=True)
        files = tuple(table.file_uris())
        frame = pl.scan_delta(location.target, version=version)
        frame.collect_schema()
    except Exception as exc:  # deltalake raises its own types, plus OSError from the store
        raise _table_error(location, exc, where) from None
    names = set(actions.schema.names) if hasattr(actions, "schema") else set()
    rows = size = None
    try:
        if "num_records" in names:
            rows = int(sum(v for v in actions.column("num_records").to_pylist() if v is not None))
        if "size_bytes" in names:
            size = int(sum(actions.column("size_bytes").to_pylist()))
    except Exception:  # statistics are optional in the Delta log
        rows = None
    return OpenedTable(frame=frame, version=version, label=location.pinned(version).canonical(), rows=rows,
                       size_bytes=size, files=files)


def iceberg_table(location: Location):
    """The pyiceberg Table: from a metadata file, or by identifier from a catalog configured in the
    environment (PYICEBERG_CATALOG__<NAME>__URI, ...) or ~/.pyiceberg.yaml."""
    if is_iceberg_metadata(location.target):
        from pyiceberg.table import StaticTable

        return StaticTable.from_metadata(location.target)
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog(location.catalog or "default")
    return catalog.load_table(location.target)


def _open_iceberg(location: Location, where: str | None) -> OpenedTable:
    try:
        table = iceberg_table(location)
        snapshot = table.snapshot_by_id(location.pin) if location.pin is not None else table.current_snapshot()
    except Exception as exc:
        raise _table_error(location, exc, where) from None
    if snapshot is None:
        if location.pin is not None:
            raise ConfigError(f"Iceberg table {location.target!r} has no snapshot {location.pin}",
                              location=where or location.text)
        raise ConfigError(f"Iceberg table {location.target!r} has no snapshot yet (no data written)",
                          location=where or location.text)
    try:
        frame = pl.scan_iceberg(table, snapshot_id=snapshot.snapshot_id)
        frame.collect_schema()
    except Exception as exc:
        raise _table_error(location, exc, where) from None
    summary = dict(snapshot.summary.additional_properties) if snapshot.summary else {}
    rows = int(summary["total-records"]) if "total-records" in summary else None
    size = int(summary["total-files-size"]) if "total-files-size" in summary else None
    return OpenedTable(frame=frame, version=snapshot.snapshot_id,
                       label=location.pinned(snapshot.snapshot_id).canonical(), rows=rows, size_bytes=size)
