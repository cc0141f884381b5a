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


def test_drift_statistics_agree_across_engines(tmp_path, postgres_server, monkeypatch):
    """PSI is the same number on every engine (same bins); KS is within the quantile grid's resolution."""
    import numpy as np
    import polars as pl

    from mlci.adapters.sql_engines import EnginePool
    from mlci.data.drift import compare, settings_from_config
    from mlci.data.engine_check import dataset_for_engine, drift_with_engine

    rng = np.random.default_rng(7)
    n = 5000
    reference = pl.DataFrame({"amount": rng.lognormal(3, 1, n), "score": rng.normal(0, 1, n),
                              "segment": rng.choice(["retail", "online", "partner"], n)})
    current = reference.with_columns(pl.col("amount") * 1.6,
                                     pl.Series("segment", rng.choice(["retail", "online", "reseller"], n)))
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    reference.write_parquet(ref_path)
    current.write_parquet(cur_path)
    url = postgres_server.create_database("drift").replace("postgresql://", "postgresql+psycopg://")
    load_into_postgres(url, "ref", ref_path)
    load_into_postgres(url, "cur", cur_path)
    monkeypatch.setenv("DRIFT_WAREHOUSE_URL", url)
    settings = settings_from_config({})

    def stats(dataset) -> dict[str, tuple]:
        return {c.column: (c.status, round(c.psi, 6), c.ks_statistic) for c in dataset.columns}

    results = {"polars": stats(compare(reference, current, settings, label="cur", reference_label="ref"))}
    with EnginePool() as pool:
        for engine in ("duckdb", "spark"):
            ref = dataset_for_engine(str(ref_path), engine, None, None, base=tmp_path)
            cur = dataset_for_engine(str(cur_path), engine, None, None, base=tmp_path)
            results[engine] = stats(drift_with_engine(pool, ref, cur, settings, label="cur", reference_label="ref"))
        ref = dataset_for_engine("ref", "sql", "DRIFT_WAREHOUSE_URL", None, base=tmp_path)
        cur = dataset_for_engine("cur", "sql", "DRIFT_WAREHOUSE_URL", None, base=tmp_path)
        results["sql"] = stats(drift_with_engine(pool, ref, cur, settings, label="cur", reference_label="ref"))

    expected = results["polars"]
    assert [expected[c][0] for c in ("amount", "score", "segment")] == ["drift", "ok", "drift"]
    for engine, got in results.items():
        assert {c: v[0] for c, v in got.items()} == {c: v[0] for c, v in expected.items()}, (engine, got)
        for column, (_, psi_value, ks) in got.items():
            assert psi_value == pytest.approx(expected[column][1], rel=1e-6, abs=1e-9), (engine, column)
            if ks is not None:
                assert ks == pytest.approx(expected[column][2], abs=0.011), (engine, column)
