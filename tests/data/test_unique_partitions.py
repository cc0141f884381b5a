"""Uniqueness on huge streamed files: hash-partitioned passes give the exact count and the first examples."""

from __future__ import annotations

import polars as pl
import pytest

from mlci.data.check import DataFile, check_file
from tests.data.conftest import NOW, base_frame, write
from tests.data.test_check_rules import contract_for, set_rows


@pytest.mark.parametrize("partition_rows", [10**12, 7, 1], ids=["one-pass", "several-parts", "one-row-parts"])
def test_partitioned_uniqueness_matches_the_single_pass(tmp_path, monkeypatch, partition_rows):
    import mlci.data.check

    monkeypatch.setattr(mlci.data.check, "STREAMING_FROM_BYTES", 0)
    monkeypatch.setattr(mlci.data.check, "UNIQUE_PARTITION_ROWS", partition_rows)
    frame = set_rows("id", [10, 20, 77], 5)(base_frame())
    frame = set_rows("code", [40], "AB-004")(frame)
    frame = set_rows("id", [60], None)(frame)  # a null key is not a duplicate
    contract = contract_for({"id": {"unique": True}}, unique=[["code", "country"]])
    path = write(frame, tmp_path / "d.parquet")
    result = check_file(DataFile(path=path, format="parquet", source="t", contract=contract), now=NOW)
    rules = {r.name: r for r in result.rules}
    assert result.engine == "streaming"
    assert (rules["id: unique"].failing_rows, [e.row for e in rules["id: unique"].examples]) == (3, [10, 20, 77])
    pair = rules["code, country: unique together"]
    assert (pair.failing_rows, [e.row for e in pair.examples]) == (1, [40])


def test_big_files_split_uniqueness_into_parts(tmp_path, monkeypatch):
    import mlci.data.check

    monkeypatch.setattr(mlci.data.check, "UNIQUE_PARTITION_ROWS", 30)
    lf = pl.LazyFrame({"x": range(100)})
    assert mlci.data.check._unique_partitions(lf, "streaming") == 4
    assert mlci.data.check._unique_partitions(lf, "in-memory") == 1


@pytest.mark.parametrize("q", [0.0, 0.01, 0.5, 0.731, 0.99, 1.0])
def test_the_bounded_quantile_equals_polars_quantile(q):
    import numpy as np

    from mlci.data.check import _bounded_quantile

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.lognormal(0, 2, 5000), np.full(3000, 7.25), rng.integers(-50, 50, 2000)])
    frame = pl.LazyFrame({"x": rng.permutation(values)}).with_columns(
        pl.when(pl.int_range(pl.len()) % 97 == 0).then(None).otherwise(pl.col("x")).alias("x"))
    expected = frame.select(pl.col("x").quantile(q, "linear")).collect().item()
    assert _bounded_quantile(frame, pl.col("x"), q) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_huge_streamed_files_get_exact_quantiles_in_bounded_memory(tmp_path, monkeypatch):
    import mlci.data.check

    monkeypatch.setattr(mlci.data.check, "STREAMING_FROM_BYTES", 0)
    monkeypatch.setattr(mlci.data.check, "QUANTILE_IN_MEMORY_ROWS", 10)
    contract = contract_for({"amount": {"quantiles": [{"q": 0.5, "min": 49, "max": 50}]}})
    path = write(base_frame(), tmp_path / "d.parquet")
    result = check_file(DataFile(path=path, format="parquet", source="t", contract=contract), now=NOW)
    rule = next(r for r in result.rules if r.kind == "quantile")
    assert (rule.status, rule.observed) == ("passed", 49.5)
