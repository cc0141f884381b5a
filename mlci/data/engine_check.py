"""`mlci data check` and `mlci data drift` on DuckDB, Spark or a SQL warehouse, where the data lives.

The engine exposes the dataset as one relation; mlci.data.sql_contract turns
the contract into aggregate queries in the engine's dialect; only counts and a
few example rows come back.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from mlci.data.check import DataFile, FileResult
from mlci.data.sql_contract import EngineSchema, evaluate, type_name

SCHEMA_LABELS = {"parquet": "Parquet schema", "csv": "CSV data", "ndjson": "NDJSON data"}


def check_with_engine(data_file: DataFile, *, now: datetime | None = None, engines=None) -> FileResult:
    from mlci.adapters.sql_engines import EnginePool

    own_pool = engines is None
    pool = engines if engines is not None else EnginePool()
    try:
        engine = pool.get(data_file.engine, data_file.connection, where=data_file.where)
        started = time.perf_counter()
        prepared = engine.prepare(data_file)
        schema = EngineSchema(
            columns={name: type_name(text, engine.dialect) for name, text in prepared.columns.items()},
            source_label=SCHEMA_LABELS.get(data_file.format, "table schema"),
            has_row_number=prepared.has_row_number,
        )
        run = evaluate(data_file.contract, schema, engine.dialect, engine.execute,
                       now=now or datetime.now(timezone.utc), relation=prepared.relation)
    finally:
        if own_pool:
            pool.close()
    note = f"{run.queries} quer{'y' if run.queries == 1 else 'ies'} on {engine.name}"
    return FileResult(path=prepared.label, source=data_file.source, format=data_file.format, rows=run.rows,
                      seconds=round(time.perf_counter() - started, 3), rules=run.results, note=note,
                      engine=engine.name, version=prepared.version)


def dataset_for_engine(text: str, engine: str, connection: str | None, fmt: str | None, *, base,
                       where: str | None = None) -> DataFile:
    """One drift side as a DataFile for an engine: a table name (engine sql, or a source's `table:`),
    a Delta/Iceberg table, or files (a glob or folder is read as one dataset by the engine)."""
    from mlci.data.contract import Contract
    from mlci.data.location import is_glob
    from mlci.data.sources import detect_format, find, resolve

    empty = Contract(origin="drift", columns={}, rules=())
    if engine == "sql":
        return DataFile(path=text, format="table", source="drift", contract=empty, engine=engine,
                        connection=connection, table=text, where=where)
    location = resolve(text, base, table_format=fmt, where=where)
    if location.is_table:
        return DataFile(path=location.canonical(), format=location.table_format, source="drift", contract=empty,
                        location=location, engine=engine, connection=connection, where=where)
    found = find(location, where=where)
    if len(found) == 1 and not is_glob(location.target):
        item = found[0]
        return DataFile(path=item.path, format=detect_format(item.path, fmt or item.format_hint, location=where),
                        source="drift", contract=empty, size=item.size, folder=item.folder, engine=engine,
                        connection=connection, where=where)
    return DataFile(path=location.target, format=detect_format(location.target, fmt, location=where), source="drift",
                    contract=empty, size=sum(f.size or 0 for f in found), engine=engine, connection=connection,
                    where=where)


def drift_with_engine(pool, reference: DataFile, current: DataFile, settings, *, label: str,
                      reference_label: str):
    """DatasetDrift of `current` against `reference`, both read by the same engine."""
    from mlci.data.drift_engine import Side, compare_in_engine

    engine = pool.get(current.engine, current.connection, where=current.where)
    ref = engine.prepare(reference, view="__mlci_reference")
    cur = engine.prepare(current, view="__mlci_current")

    def side(prepared) -> Side:
        return Side(prepared.relation, {n: type_name(t, engine.dialect) for n, t in prepared.columns.items()},
                    prepared.label)

    return compare_in_engine(side(ref), side(cur), settings, engine.dialect, engine.execute,
                             label=cur.label if label is None else label,
                             reference_label=ref.label if reference_label is None else reference_label,
                             engine_name=engine.name)
