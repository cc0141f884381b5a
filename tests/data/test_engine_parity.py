"""Every engine gives the polars engine's verdicts, failing counts and rule names on the same data.

The data is the benchmark's (9 columns, ten kinds of planted violations spread
over the file). It is checked by polars and DuckDB (the Parquet file), Spark in
local mode (the same file) and PostgreSQL (the same rows, COPYed into a
table). One Spark session and one PostgreSQL server serve the whole test run.
"""

from __future__ import annotations

import pytest

from mlci.data.check import DataFile, check_file
from mlci.data.contract import load_contract_file
from tests.data.conftest import NOW
from tests.data.engine_data import load_into_postgres, make_parquet, write_contract

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    return make_parquet(root / "bad.parquet"), load_contract_file(write_contract(root / "contract.yml"))


def verdicts(result) -> dict[str, tuple[str, int | None]]:
    return {rule.name: (rule.status, rule.failing_rows) for rule in result.rules}


def table(rows: dict[str, dict[str, tuple]]) -> str:
    """engine x rule, for the assertion message."""
    engines = list(rows)
    names = list(next(iter(rows.values())))
    lines = ["rule".ljust(48) + "".join(e.ljust(18) for e in engines)]
    for name in names:
        lines.append(name[:47].ljust(48) + "".join(str(rows[e].get(name))[:17].ljust(18) for e in engines))
    return "\n".join(lines)


def test_engines_agree_with_polars_rule_by_rule(bench_data, postgres_server, monkeypatch):
    path, contract = bench_data
    url = postgres_server.create_database("parity").replace("postgresql://", "postgresql+psycopg://")
    load_into_postgres(url, "orders", path)
    monkeypatch.setenv("PARITY_WAREHOUSE_URL", url)

    results = {"polars": check_file(DataFile(path=path, format="parquet", source="b", contract=contract), now=NOW)}
    for engine in ("duckdb", "spark"):
        results[engine] = check_file(DataFile(path=path, format="parquet", source="b", contract=contract,
                                              engine=engine), now=NOW)
    results["sql"] = check_file(DataFile(path="orders", format="table", source="b", contract=contract, engine="sql",
                                         connection="PARITY_WAREHOUSE_URL", table="orders"), now=NOW)
    rows = {engine: verdicts(result) for engine, result in results.items()}

    expected = rows["polars"]
    planted = {name for name, (status, failing) in expected.items() if status == "failed"}
    assert len(planted) == 11 and all(expected[name][1] == 3 for name in planted), table(rows)  # not vacuous
    for engine, got in rows.items():
        assert got == expected, f"{engine} disagrees with polars:\n{table(rows)}"
    assert {r.rows for r in results.values()} == {12_000}
    assert results["sql"].engine == "sql (postgresql)"
    # Failing row rules bring back examples from every engine.
    for engine, result in results.items():
        failing = [r for r in result.rules if r.status == "failed" and r.failing_rows]
        assert all(r.examples for r in failing), engine
