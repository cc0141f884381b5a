"""Connections to the engines that run contracts and drift statistics where the data lives.

DuckDB (in process: local files, object storage through httpfs, Delta through
delta-rs' Arrow dataset, Iceberg data files), Spark (local mode, a cluster
master or Spark Connect), and any SQLAlchemy warehouse. Each one exposes the
dataset as one relation, its column types, and `execute(sql)`; the SQL itself
comes from mlci.data.sql_contract, rendered in the engine's dialect.

Connection strings come from an environment variable named in mlci.yml (a
masked CI/CD variable), never from the file itself, and never appear in a
message: URLs are shown without their password, and any error text is
scrubbed of the connection string before it is passed on.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.data.location import safe_url
from mlci.errors import ConfigError, ExternalServiceError

VIEW = "__mlci_data"
ROW_NUMBER = "__mlci_row"

# SQLAlchemy dialect name -> sqlglot dialect
SQLGLOT_DIALECTS = {
    "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "mssql": "tsql", "oracle": "oracle",
    "sqlite": "sqlite", "snowflake": "snowflake", "bigquery": "bigquery", "redshift": "redshift",
    "trino": "trino", "presto": "presto", "databricks": "databricks", "duckdb": "duckdb", "clickhouse": "clickhouse",
    "awsathena": "athena", "hive": "hive", "teradatasql": "teradata",
}


def _relation(name: str, db: str | None = None, catalog: str | None = None):
    """A quoted sqlglot table reference (sqlglot is imported only when an engine runs)."""
    from sqlglot import exp

    return exp.Table(this=exp.to_identifier(name, quoted=True),
                     db=exp.to_identifier(db, quoted=True) if db else None,
                     catalog=exp.to_identifier(catalog, quoted=True) if catalog else None)


@dataclass
class Prepared:
    """The dataset as the engine sees it."""

    relation: Any  # sqlglot exp.Table
    columns: dict[str, str]  # name -> engine type text, in order
    label: str  # what the report calls it
    size: int = 0
    version: int | None = None  # Delta version / Iceberg snapshot id read
    has_row_number: bool = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Engine:
    name = "engine"
    dialect = "duckdb"

    def __init__(self, connection: str | None, variable: str | None):
        self.connection = connection
        self.variable = variable

    def scrub(self, text: str) -> str:
        from mlci.adapters.object_store import scrub

        text = scrub(text)
        if self.connection:
            text = text.replace(self.connection, f"${self.variable}")
            password = _url_password(self.connection)
            if password:
                text = text.replace(password, "[MASKED]")
        return text

    def shown_connection(self) -> str:
        return _hide_password(self.connection) if self.connection else "(default)"

    def unreachable(self, exc: BaseException, what: str) -> ExternalServiceError:
        return ExternalServiceError(self.service, self.shown_connection(), f"{what}: {self.scrub(_first_line(exc))}",
                                    hint=self.hint())

    service = "engine"

    def hint(self) -> str:
        where = f"the variable {self.variable}" if self.variable else "the engine's default"
        return f"check the connection string in {where} and that this runner can reach it"

    def prepare(self, data_file, view: str = VIEW) -> Prepared:  # pragma: no cover - each engine has its own
        raise NotImplementedError

    def execute(self, sql: str) -> list[tuple]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        pass


def _url_password(url: str) -> str | None:
    try:
        from urllib.parse import urlsplit

        return urlsplit(url).password
    except ValueError:
        return None


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: drop user info the generic way
        return safe_url(url) if "://" in url else "(set)"


# -- DuckDB ----------------------------------------------------------------------------------------
class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"
    service = "DuckDB"

    def __init__(self, connection: str | None, variable: str | None):
        super().__init__(connection, variable)
        import duckdb

        try:
            self.con = duckdb.connect(connection or ":memory:")
        except Exception as exc:  # duckdb.Error and IO errors opening a database file
            raise self.unreachable(exc, "cannot open the database") from None
        self._object_store_ready = False
        self._registered: list[Any] = []

    def _load_extension(self, name: str) -> None:
        """Load an extension from the duckdb-extension-<name> package when installed (offline
        runners), else let DuckDB install it from its repository."""
        import importlib

        import duckdb

        try:
            package = importlib.import_module(f"duckdb_extension_{name}")
            found = sorted(Path(package.__file__).parent.glob(
                f"extensions/v{duckdb.__version__}/{name}.duckdb_extension"))
        except ImportError:
            found = []
        if found:
            self.con.execute(f"LOAD '{found[0].as_posix()}'")
        else:
            self.con.execute(f"INSTALL {name}")
            self.con.execute(f"LOAD {name}")

    def _object_store(self, url: str) -> None:
        """httpfs plus an S3 secret built from the standard AWS variables (never from mlci.yml)."""
        if self._object_store_ready:
            return
        try:
            self._load_extension("httpfs")
        except Exception as exc:
            raise ConfigError(f"DuckDB cannot load its httpfs extension for {safe_url(url)}: {_first_line(exc)}",
                              hint="pip install duckdb-extension-httpfs matching your duckdb version, or let the "
                                   "runner reach DuckDB's extension repository") from None
        env = os.environ
        options: dict[str, str] = {}
        if env.get("AWS_ACCESS_KEY_ID"):
            options["KEY_ID"] = env["AWS_ACCESS_KEY_ID"]
            options["SECRET"] = env.get("AWS_SECRET_ACCESS_KEY", "")
            if env.get("AWS_SESSION_TOKEN"):
                options["SESSION_TOKEN"] = env["AWS_SESSION_TOKEN"]
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            options["REGION"] = region
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options["ENDPOINT"] = host.rstrip("/") or endpoint
            options["URL_STYLE"] = "path"
            options["USE_SSL"] = "true" if scheme != "http" else "false"
        if options:
            def quoted(value: str) -> str:
                return "'" + value.replace("'", "''") + "'"

            body = ", ".join(f"{key} {quoted(value)}" if key != "USE_SSL" else f"{key} {value}"
                             for key, value in options.items())
            self.con.execute(f"CREATE OR REPLACE SECRET mlci_s3 (TYPE s3, {body})")
        else:
            try:  # no keys in the environment: the instance role, through the aws extension
                self._load_extension("aws")
                self.con.execute("CREATE OR REPLACE SECRET mlci_s3 (TYPE s3, PROVIDER credential_chain)")
            except Exception:  # without it, httpfs still reads public buckets
                pass
        self._object_store_ready = True

    def prepare(self, data_file, view: str = VIEW) -> Prepared:
        from mlci.data.location import is_remote

        label = safe_url(str(data_file.path))
        size = data_file.size or 0
        version = None
        row_number = False
        location = data_file.location
        try:
            if data_file.table:
                relation = self.con.table(data_file.table)
            elif location is not None and location.table_format == "delta":
                from mlci.adapters.tables import delta_table, snapshot

                snap = snapshot(location, where=data_file.where, with_files=False)
                if location.remote:
                    self._object_store(location.target)
                dataset = delta_table(snap.location).to_pyarrow_dataset()
                self._registered.append(dataset)
                relation = self.con.from_arrow(dataset)
                label, size, version = snap.location.canonical(), snap.size_bytes or 0, snap.version
            elif location is not None and location.table_format == "iceberg":
                from mlci.adapters.tables import snapshot

                snap = snapshot(location, where=data_file.where)
                if snap.has_deletes:
                    raise ConfigError("this Iceberg snapshot has delete files, which the duckdb engine does not "
                                      "apply", location=data_file.where or location.text,
                                      hint="use engine: polars (or spark) for this table")
                files = [path for path, _ in snap.files]
                if any(is_remote(f) for f in files):
                    self._object_store(files[0])
                relation = self.con.read_parquet(files)
                label, size, version = snap.location.canonical(), snap.size_bytes or 0, snap.version
            else:
                path = str(data_file.path)
                if is_remote(path):
                    self._object_store(path)
                elif not data_file.folder:
                    size = Path(path).stat().st_size
                source = path.rstrip("/") + "/**/*" + _SUFFIX.get(data_file.format, "") if data_file.folder else path
                if data_file.format == "parquet":
                    row_number = not data_file.folder
                    relation = self.con.read_parquet(source, hive_partitioning=data_file.folder,
                                                     file_row_number=row_number)
                    if row_number:
                        relation = relation.project(f'* EXCLUDE (file_row_number), file_row_number AS "{ROW_NUMBER}"')
                elif data_file.format == "csv":
                    relation = self.con.read_csv(source, header=True)
                else:
                    relation = self.con.read_json(source, format="newline_delimited")
            relation.create_view(view, replace=True)
            described = self.con.execute(f'DESCRIBE "{view}"').fetchall()
        except (ConfigError, ExternalServiceError):
            raise
        except Exception as exc:
            raise self._failure(exc, data_file) from None
        columns = {name: type_text for name, type_text, *_ in described if name != ROW_NUMBER}
        return Prepared(relation=_relation(view), columns=columns, label=label, size=size, version=version,
                        has_row_number=row_number)

    def _failure(self, exc: BaseException, data_file) -> Exception:
        from mlci.adapters.object_store import credential_hint, looks_unreachable
        from mlci.data.location import url_scheme

        text = self.scrub(_first_line(exc))
        scheme = url_scheme(str(data_file.path))
        if scheme and looks_unreachable(text):
            return ExternalServiceError("object storage", safe_url(str(data_file.path)), text,
                                        hint=credential_hint(scheme))
        return ConfigError(f"DuckDB cannot read it: {text}", location=safe_url(str(data_file.path)))

    def execute(self, sql: str) -> list[tuple]:
        try:
            return self.con.execute(sql).fetchall()
        except Exception as exc:
            raise ConfigError(f"DuckDB rejected the query: {self.scrub(_first_line(exc))}") from None

    def close(self) -> None:
        self.con.close()


_SUFFIX = {"parquet": ".parquet", "csv": ".csv", "ndjson": ".*json*"}


# -- Spark -----------------------------------------------------------------------------------------
class SparkEngine(Engine):
    name = "spark"
    dialect = "spark"
    service = "Spark"

    def __init__(self, connection: str | None, variable: str | None):
        super().__init__(connection, variable)
        self.spark = spark_session(connection)
        if self.spark is None:
            raise self.unreachable(RuntimeError("no session"), "cannot start a Spark session")

    def prepare(self, data_file, view: str = VIEW) -> Prepared:
        spark = self.spark
        label = safe_url(str(data_file.path))
        version = None
        location = data_file.location
        try:
            if data_file.table:
                frame = spark.table(data_file.table)
            elif location is not None and location.table_format == "delta":
                from mlci.adapters.tables import snapshot

                snap = snapshot(location, where=data_file.where, with_files=False)
                frame = spark.read.format("delta").option("versionAsOf", snap.version).load(
                    _spark_path(location.target))
                label, version = snap.location.canonical(), snap.version
            elif location is not None and location.table_format == "iceberg":
                from mlci.adapters.tables import snapshot

                snap = snapshot(location, where=data_file.where, with_files=False)
                frame = spark.read.option("snapshot-id", snap.version).table(location.target)
                label, version = snap.location.canonical(), snap.version
            else:
                path = _spark_path(str(data_file.path))
                if data_file.format == "parquet":
                    frame = spark.read.parquet(path)
                elif data_file.format == "csv":
                    frame = spark.read.option("header", True).option("inferSchema", True).csv(path)
                else:
                    frame = spark.read.json(path)
            frame.createOrReplaceTempView(view)
            columns = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
        except (ConfigError, ExternalServiceError):
            raise
        except Exception as exc:
            raise ConfigError(f"Spark cannot read it: {self.scrub(_first_line(exc))}",
                              location=safe_url(str(data_file.path)),
                              hint="object storage, Delta and Iceberg need the matching connectors "
                                   "(hadoop-aws, delta-spark, iceberg-spark-runtime) on the cluster") from None
        size = data_file.size or 0
        if not size and not data_file.folder and Path(str(data_file.path)).is_file():
            size = Path(str(data_file.path)).stat().st_size
        return Prepared(relation=_relation(view), columns=columns, label=label, size=size, version=version)

    def execute(self, sql: str) -> list[tuple]:
        try:
            return [tuple(row) for row in self.spark.sql(sql).collect()]
        except Exception as exc:
            raise ConfigError(f"Spark rejected the query: {self.scrub(_first_line(exc))}") from None


def _spark_path(path: str) -> str:
    # Hadoop's S3 connector is s3a://; s3:// means the old block store there.
    return "s3a://" + path[len("s3://"):] if path.startswith("s3://") else path


_SPARK_SESSIONS: dict[str, Any] = {}


def spark_session(connection: str | None):
    """A Spark session: Spark Connect for sc:// URLs, a master URL otherwise, local[*] by default.

    Local sessions bind to 127.0.0.1 and run in UTC, so timestamps read back as written.
    """
    key = connection or "local[*]"
    if key in _SPARK_SESSIONS:
        return _SPARK_SESSIONS[key]
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("mlci").config("spark.sql.session.timeZone", "UTC")
    if key.startswith("sc://"):
        builder = builder.remote(key)
    else:
        builder = (builder.master(key).config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", "4")
                   .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1"))
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = builder.getOrCreate()
    if not key.startswith("sc://"):
        session.sparkContext.setLogLevel("ERROR")
    _SPARK_SESSIONS[key] = session
    return session


# -- SQLAlchemy ------------------------------------------------------------------------------------
class SqlAlchemyEngine(Engine):
    name = "sql"
    service = "SQL warehouse"

    def __init__(self, connection: str | None, variable: str | None):
        super().__init__(connection, variable)
        if not connection:
            raise ConfigError("engine sql needs a connection", hint="set `connection:` to the name of a masked "
                              "CI/CD variable holding a SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@host/db")
        from sqlalchemy import create_engine

        try:
            self.engine = create_engine(connection, pool_pre_ping=True)
        except Exception as exc:  # a malformed URL or a missing driver
            raise ConfigError(f"${variable} is not a usable SQLAlchemy URL: {self.scrub(_first_line(exc))}",
                              hint="e.g. postgresql+psycopg://user:pass@host:5432/db (the driver must be "
                                   "installed)") from None
        self.dialect = SQLGLOT_DIALECTS.get(self.engine.dialect.name, self.engine.dialect.name)
        self.name = f"sql ({self.engine.dialect.name})"
        try:
            self.raw = self.engine.raw_connection()
        except Exception as exc:
            self.engine.dispose()
            raise self.unreachable(exc, "cannot connect") from None

    def prepare(self, data_file, view: str = VIEW) -> Prepared:
        from sqlalchemy import inspect

        if not data_file.table:
            raise ConfigError("engine sql checks a table in the warehouse: give the source a `table:`",
                              location=data_file.where)
        parts = data_file.table.split(".")
        schema = ".".join(parts[:-1]) or None
        try:
            found = inspect(self.engine).get_columns(parts[-1], schema=schema)
        except Exception as exc:
            if type(exc).__name__ == "NoSuchTableError":
                raise ConfigError(f"table {data_file.table!r} does not exist (or is not visible to this user)",
                                  location=data_file.where) from None
            raise self.unreachable(exc, f"cannot describe {data_file.table}") from None
        columns = {c["name"]: str(c["type"].compile(dialect=self.engine.dialect)) for c in found}
        table = _relation(parts[-1], parts[-2] if len(parts) > 1 else None, parts[-3] if len(parts) > 2 else None)
        return Prepared(relation=table, columns=columns, label=data_file.table)

    def execute(self, sql: str) -> list[tuple]:
        cursor = self.raw.cursor()
        try:
            cursor.execute(sql)  # no parameters: the driver leaves % and : alone
            return [tuple(row) for row in cursor.fetchall()]
        except Exception as exc:
            self.raw.rollback()
            raise ConfigError(f"the warehouse rejected the query: {self.scrub(_first_line(exc))}") from None
        finally:
            cursor.close()

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


ENGINE_CLASSES = {"duckdb": DuckDBEngine, "spark": SparkEngine, "sql": SqlAlchemyEngine}


class EnginePool:
    """Opens each (engine, connection) once per command and closes them at the end."""

    def __init__(self, env: dict[str, str] | None = None):
        self.env = os.environ if env is None else env
        self.open: dict[tuple[str, str | None], Engine] = {}

    def get(self, engine: str, variable: str | None, *, where: str | None = None) -> Engine:
        key = (engine, variable)
        if key not in self.open:
            connection = None
            if variable:
                connection = self.env.get(variable) or None
                if connection is None:
                    raise ConfigError(f"the connection variable {variable} is not set", location=where,
                                      hint=f"define {variable} as a masked CI/CD variable (Settings > CI/CD > "
                                           "Variables) holding the connection string")
            self.open[key] = ENGINE_CLASSES[engine](connection, variable)
        return self.open[key]

    def close(self) -> None:
        for engine in self.open.values():
            with contextlib.suppress(Exception):  # closing is best effort; the results are already in
                engine.close()
        self.open.clear()

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
