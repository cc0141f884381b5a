"""Delta Lake and Iceberg tables as sources: the version read is pinned and reported, on polars and DuckDB."""

from __future__ import annotations

import polars as pl
import pytest

from tests.data.conftest import base_frame, read_json

CONTRACT = """\
columns:
  id: {dtype: int64, unique: true}
  amount: {dtype: float64, min: 0}
"""


@pytest.fixture
def delta_table(project):
    from deltalake import write_deltalake

    path = project / "tables" / "orders"
    write_deltalake(str(path), base_frame().to_arrow())
    bad = base_frame(2).with_columns(pl.lit(-1.0).alias("amount"), pl.col("id") + 1000)
    write_deltalake(str(path), bad.to_arrow(), mode="append")
    return path


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_delta_source_in_mlci_yml_with_a_version_key(project, delta_table, run_cli, engine):
    (project / "mlci.yml").write_text(f"""\
data:
  sources:
    orders:
      path: delta:tables/orders
      version: 0
      engine: {engine}
      contract:
{"".join("        " + line + chr(10) for line in CONTRACT.splitlines())}""")
    code, _, err = run_cli("data", "check")
    assert code == 0, err
    (checked,) = read_json(project / "mlci-out" / "data-check.json")["files"]
    assert (checked["version"], checked["rows"]) == (0, 100)
    assert checked["path"].endswith("tables/orders@v0")

    config = project / "mlci.yml"
    config.write_text(config.read_text().replace("version: 0", "version: 1"))
    code, _, err = run_cli("data", "check")
    assert code == 1, err
    (checked,) = read_json(project / "mlci-out" / "data-check.json")["files"]
    assert (checked["version"], checked["rows"]) == (1, 102)


def test_a_pin_that_does_not_exist_is_a_config_error(project, delta_table, run_cli):
    (project / "contract.yml").write_text(CONTRACT)
    code, _, err = run_cli("data", "check", "delta:tables/orders@v9", "--contract", "contract.yml")
    assert code == 2
    assert "cannot open delta table" in err


def test_two_pins_that_disagree_are_refused(project, delta_table, run_cli):
    (project / "mlci.yml").write_text("""\
data:
  sources:
    orders: {path: "delta:tables/orders@v1", version: 0, contract: {columns: {id: {}}}}
""")
    code, _, err = run_cli("data", "check")
    assert code == 2
    assert "pins version 1 but version says 0" in err


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_iceberg_table_from_a_catalog_at_a_snapshot(project, run_cli, engine, monkeypatch):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("lake", uri=f"sqlite:///{project}/catalog.db", warehouse=f"file://{project}/wh")
    catalog.create_namespace("sales")
    table = catalog.create_table("sales.orders", schema=base_frame().to_arrow().schema)
    table.append(base_frame().to_arrow())
    first = table.current_snapshot().snapshot_id
    table.append(base_frame(1).with_columns(pl.lit(-1.0).alias("amount"), pl.lit(500).alias("id")).to_arrow())
    monkeypatch.setattr("pyiceberg.catalog._ENV_CONFIG.config",
                        {"catalog": {"lake": {"uri": f"sqlite:///{project}/catalog.db",
                                              "warehouse": f"file://{project}/wh"}}}, raising=False)
    (project / "contract.yml").write_text(CONTRACT)

    code, _, err = run_cli("data", "check", "iceberg:lake/sales.orders", "--contract", "contract.yml",
                           "--engine", engine)
    assert code == 1, err
    (latest,) = read_json(project / "mlci-out" / "data-check.json")["files"]
    assert latest["rows"] == 101 and latest["version"] != first
    assert latest["path"] == f"iceberg:lake/sales.orders@{latest['version']}"

    code, _, err = run_cli("data", "check", f"iceberg:lake/sales.orders@{first}", "--contract", "contract.yml",
                           "--engine", engine)
    assert code == 0, err
    (pinned,) = read_json(project / "mlci-out" / "data-check.json")["files"]
    assert (pinned["version"], pinned["rows"]) == (first, 100)
