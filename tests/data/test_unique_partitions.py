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
