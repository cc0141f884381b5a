"""`mlci data check` on DuckDB, Spark or a SQL warehouse: the contract runs where the data lives.

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
