"""Delta Lake and Iceberg table metadata: which version, which files, how many rows.

Reads only the table's log or metadata files, never its data, so the run
cache can fingerprint a table version cheaply and lineage can record it.
Credentials come from the environment, as for object storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlci.data.location import Location, is_iceberg_metadata, safe_url
from mlci.errors import ConfigError, ExternalServiceError


@dataclass(frozen=True)
class TableSnapshot:
    location: Location  # pinned to `version`
    version: int  # Delta version or Iceberg snapshot id
    files: tuple[tuple[str, int], ...] = ()  # (data file URI, size) at that version
    rows: int | None = None
    size_bytes: int | None = None
    has_deletes: bool = False  # Iceberg delete files or Delta deletion vectors: files alone are not the table


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def table_error(location: Location, exc: BaseException, where: str | None) -> Exception:
    from mlci.adapters.object_store import credential_hint, looks_unreachable, scrub

    text = scrub(first_line(exc))
    if location.remote and looks_unreachable(text):
        return ExternalServiceError(f"{location.table_format} table", safe_url(location.target), text,
                                    hint=credential_hint(location.scheme))
    return ConfigError(f"cannot open {location.table_format} table {safe_url(location.target)!r}: {text}",
                       location=where or location.text)


def delta_table(location: Location):
    from deltalake import DeltaTable

    return DeltaTable(location.target, version=location.pin)


def iceberg_table(location: Location):
    """The pyiceberg Table: from a metadata file, or by identifier from a catalog configured in the
    environment (PYICEBERG_CATALOG__<NAME>__URI, ...) or ~/.pyiceberg.yaml."""
    if is_iceberg_metadata(location.target):
        from pyiceberg.table import StaticTable

        return StaticTable.from_metadata(location.target)
    from pyiceberg.catalog import load_catalog

    return load_catalog(location.catalog or "default").load_table(location.target)


def snapshot(location: Location, *, where: str | None = None, with_files: bool = True) -> TableSnapshot:
    """The table's pinned (or current) version, with its data files when asked, from metadata alone."""
    try:
        if location.table_format == "delta":
            return _delta_snapshot(location)
        return _iceberg_snapshot(location, where, with_files)
    except (ConfigError, ExternalServiceError):
        raise
    except Exception as exc:  # deltalake and pyiceberg raise their own types, plus OSError from the store
        raise table_error(location, exc, where) from None


def _delta_snapshot(location: Location) -> TableSnapshot:
    table = delta_table(location)
    version = table.version()
    actions = table.get_add_actions(flatten=True)
    names = set(actions.schema.names)
    paths = [str(p) for p in actions.column("path").to_pylist()]
    sizes = [int(s) for s in actions.column("size_bytes").to_pylist()] if "size_bytes" in names else [0] * len(paths)
    rows = None
    if "num_records" in names:
        counts = actions.column("num_records").to_pylist()
        rows = None if any(c is None for c in counts) else int(sum(counts))
    deletes = "deletionVector.storageType" in names and any(
        v is not None for v in actions.column("deletionVector.storageType").to_pylist())
    root = location.target.rstrip("/")
    files = tuple((p if "://" in p or p.startswith("/") else f"{root}/{p}", s)
                  for p, s in zip(paths, sizes, strict=True))
    return TableSnapshot(location=location.pinned(version), version=version, files=files, rows=rows,
                         size_bytes=sum(sizes), has_deletes=deletes)


def _iceberg_snapshot(location: Location, where: str | None, with_files: bool) -> TableSnapshot:
    table = iceberg_table(location)
    current = table.snapshot_by_id(location.pin) if location.pin is not None else table.current_snapshot()
    if current is None:
        what = f"no snapshot {location.pin}" if location.pin is not None else "no snapshot yet (no data written)"
        raise ConfigError(f"Iceberg table {location.target!r} has {what}", location=where or location.text)
    summary = dict(current.summary.additional_properties) if current.summary else {}
    tasks = list(table.scan(snapshot_id=current.snapshot_id).plan_files()) if with_files else []
    files = tuple((task.file.file_path, int(task.file.file_size_in_bytes)) for task in tasks)
    return TableSnapshot(
        location=location.pinned(current.snapshot_id), version=current.snapshot_id, files=files,
        rows=int(summary["total-records"]) if "total-records" in summary else None,
        size_bytes=int(summary["total-files-size"]) if "total-files-size" in summary else None,
        has_deletes=any(task.delete_files for task in tasks),
    )
