"""`engine: duckdb | sql` through the CLI: configuration, connections from masked variables, exit codes.

PostgreSQL is the real server from Debian's binaries (one per test session);
its password is the secret these tests grep every output for.
"""

from __future__ import annotations

import polars as pl
import pytest

from tests.data.conftest import base_frame, read_json, write
from tests.data.engine_data import load_into_postgres
from tests.servers.postgres import PASSWORD, free_port

pytestmark = [pytest.mark.xdist_group("postgres")]

CONTRACT = """\
      contract:
        columns:
          id: {dtype: int64, unique: true}
          amount: {dtype: float64, min: 0}
          country: {dtype: string, allowed: [DE, FR, IT]}
"""


def bad_frame() -> pl.DataFrame:
    frame = base_frame()
    return frame.with_columns(
        pl.when(pl.col("id").is_in([4, 40])).then(-1.0).otherwise(pl.col("amount")).alias("amount"),
        pl.when(pl.col("id") == 9).then(pl.lit("XX")).otherwise(pl.col("country")).alias("country"),
    )


@pytest.fixture
def warehouse(postgres_server, project, monkeypatch):
    url = postgres_server.create_database("engines").replace("postgresql://", "postgresql+psycopg://")
    write(bad_frame(), project / "orders.parquet")
    load_into_postgres(url, "orders", project / "orders.parquet")
    monkeypatch.setenv("WAREHOUSE_URL", url)
    return url


def sql_config(project, connection: str = "WAREHOUSE_URL", table: str = "orders") -> None:
    (project / "mlci.yml").write_text(f"""\
data:
  sources:
    orders:
      engine: sql
      table: {table}
      connection: {connection}
{CONTRACT}""")


def test_a_warehouse_table_is_checked_where_it_lives(project, warehouse, run_cli):
    sql_config(project)
    code, out, err = run_cli("data", "check")
    assert code == 1, err
    report = read_json(project / "mlci-out" / "data-check.json")
    (checked,) = report["files"]
    assert (checked["path"], checked["engine"], checked["rows"]) == ("orders", "sql (postgresql)", 100)
    failing = {r["name"]: r["failing_rows"] for r in checked["rules"] if r["status"] == "failed"}
    assert failing == {"amount: min >= 0": 2, "country: in [DE, FR, IT]": 1}
    examples = next(r["examples"] for r in checked["rules"] if r["name"] == "amount: min >= 0")
    assert [e["value"] for e in examples] == ["-1", "-1"]  # a table has no row order: values only
    assert PASSWORD not in out + err


def test_an_unreachable_warehouse_exits_3_without_the_password(project, warehouse, run_cli, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", f"postgresql+psycopg://mlci:{PASSWORD}@127.0.0.1:{free_port()}/engines")
    sql_config(project)
    code, out, err = run_cli("data", "check")
    assert code == 3, err
    assert "SQL warehouse postgresql+psycopg://mlci:[MASKED]@127.0.0.1" in err
    assert "WAREHOUSE_URL" in err  # the hint names the variable to fix
    assert PASSWORD not in out + err


def test_a_wrong_password_exits_3_without_echoing_it(project, warehouse, run_cli, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", warehouse.replace(PASSWORD, "wrong-" + PASSWORD))
    sql_config(project)
    code, out, err = run_cli("data", "check")
    assert code == 3, err
    assert "password authentication failed" in err
    assert PASSWORD not in out + err


def test_an_unset_connection_variable_is_a_config_error(project, warehouse, run_cli, monkeypatch):
    monkeypatch.delenv("WAREHOUSE_URL")
    sql_config(project)
    code, _, err = run_cli("data", "check")
    assert code == 2
    assert "the connection variable WAREHOUSE_URL is not set" in err


def test_a_missing_table_is_a_config_error(project, warehouse, run_cli):
    sql_config(project, table="public.nope")
    code, _, err = run_cli("data", "check")
    assert code == 2
    assert "table 'public.nope' does not exist" in err


def test_a_connection_string_in_mlci_yml_is_refused(project, run_cli):
    sql_config(project, connection=f"'postgresql://mlci:{PASSWORD}@db/x'")
    code, out, err = run_cli("data", "check")
    assert code == 2
    assert "mlci.yml:6" in err  # the schema points at the connection line
    assert "postgresql://mlci:[MASKED]@db/x" in err
    assert PASSWORD not in out + err


def test_duckdb_engine_checks_files_with_row_numbered_examples(project, run_cli):
    write(bad_frame(), project / "data" / "orders.parquet")
    (project / "mlci.yml").write_text(f"""\
data:
  sources:
    orders:
      path: data/orders.parquet
      engine: duckdb
{CONTRACT}""")
    code, _, err = run_cli("data", "check")
    assert code == 1, err
    (checked,) = read_json(project / "mlci-out" / "data-check.json")["files"]
    assert checked["engine"] == "duckdb"
    rule = next(r for r in checked["rules"] if r["name"] == "amount: min >= 0")
    assert (rule["failing_rows"], [e["row"] for e in rule["examples"]]) == (2, [4, 40])


def test_drift_runs_as_aggregates_in_the_warehouse(project, warehouse, postgres_server, run_cli):
    shifted = bad_frame().with_columns(pl.col("amount") + 500)
    write(shifted, project / "current.parquet")
    load_into_postgres(warehouse, "orders_now", project / "current.parquet")
    (project / "mlci.yml").write_text("""\
data:
  drift:
    engine: sql
    connection: WAREHOUSE_URL
    reference: orders
    current: [orders_now]
    columns: [amount, qty, country]
""")
    code, out, err = run_cli("data", "drift", "--no-plots")
    assert code == 0, err
    report = read_json(project / "mlci-out" / "drift.json")
    statuses = {c["column"]: c["status"] for c in report["datasets"][0]["columns"]}
    assert statuses == {"amount": "drift", "qty": "ok", "country": "ok"}
    assert "aggregates over all rows on sql (postgresql)" in out
    assert PASSWORD not in out + err


def test_a_table_without_an_engine_is_a_located_config_error(project, run_cli):
    (project / "mlci.yml").write_text("data:\n  sources:\n    orders: {table: orders, contract: {columns: {id: {}}}}\n")
    code, _, err = run_cli("data", "check")
    assert code == 2
    assert "mlci.yml:3:" in err and "set `engine:` to duckdb, spark or sql" in err
