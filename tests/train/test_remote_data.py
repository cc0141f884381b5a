"""train.data entries that stay where they live: S3 objects (moto on 127.0.0.1) and Delta/Iceberg versions.

The fingerprint must follow the data (a changed object, a new table version)
without downloading it: objects are known by ETag/version id, tables by version.
"""

from __future__ import annotations

import json
import re
import sys
import uuid

import polars as pl
import pytest

from mlci.train.sources import RemoteData, describe_data_file, expand_data_patterns
from tests.servers.moto_s3 import SECRET_KEY

pytestmark = [pytest.mark.xdist_group("moto_s3")]

QUICK = [sys.executable, "-c", "print('quick training done')"]


@pytest.fixture
def s3(s3_server, monkeypatch):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = f"train-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=bucket)
    return s3_server, bucket


def upload(server, bucket: str, key: str, frame: pl.DataFrame, tmp_path) -> None:
    local = tmp_path / f"{uuid.uuid4().hex}.parquet"
    frame.write_parquet(local)
    server.client().upload_file(str(local), bucket, key)


def digests(patterns: list[str], tmp_path) -> dict[str, str]:
    files, unmatched = expand_data_patterns(patterns, tmp_path)
    assert unmatched == []
    return {d.path: d.sha256 for d in (describe_data_file(f, tmp_path) for f in files)}


def test_s3_objects_are_fingerprinted_by_etag_without_downloading_them(s3, tmp_path):
    server, bucket = s3
    frame = pl.DataFrame({"x": list(range(1000))})
    upload(server, bucket, "train/a.parquet", frame, tmp_path)
    upload(server, bucket, "train/b.parquet", frame.head(10), tmp_path)
    pattern = f"s3://{bucket}/train/*.parquet"

    first = digests([pattern], tmp_path)
    assert sorted(first) == [f"s3://{bucket}/train/a.parquet", f"s3://{bucket}/train/b.parquet"]
    assert digests([pattern], tmp_path) == first  # stable
    upload(server, bucket, "train/b.parquet", frame.head(11), tmp_path)  # one object changes
    second = digests([pattern], tmp_path)
    assert second[f"s3://{bucket}/train/a.parquet"] == first[f"s3://{bucket}/train/a.parquet"]
    assert second[f"s3://{bucket}/train/b.parquet"] != first[f"s3://{bucket}/train/b.parquet"]
    # Only listings and HEADs reached the store: no object was downloaded.
    downloads = [line for line in server.requests() if re.search(rf'"GET /{bucket}/train/\w', line)]
    assert downloads == []


def test_a_prefix_that_matches_nothing_is_reported_like_a_missing_file(s3, tmp_path):
    _, bucket = s3
    files, unmatched = expand_data_patterns([f"s3://{bucket}/none/*.parquet"], tmp_path)
    assert (files, unmatched) == ([], [0])


def test_delta_versions_are_pinned_and_recorded(tmp_path):
    from deltalake import write_deltalake

    table = tmp_path / "orders"
    write_deltalake(str(table), pl.DataFrame({"x": [1, 2, 3]}).to_arrow())
    files, _ = expand_data_patterns([f"delta:{table}"], tmp_path)
    (entry,) = files
    assert isinstance(entry, RemoteData)
    described = describe_data_file(entry, tmp_path)
    assert described.path == f"delta:{table}@v0"
    assert described.rows == 3

    write_deltalake(str(table), pl.DataFrame({"x": [4]}).to_arrow(), mode="append")
    current = describe_data_file(expand_data_patterns([f"delta:{table}"], tmp_path)[0][0], tmp_path)
    pinned = describe_data_file(expand_data_patterns([f"delta:{table}@v0"], tmp_path)[0][0], tmp_path)
    assert (current.path, current.rows) == (f"delta:{table}@v1", 4)
    assert current.sha256 != described.sha256
    assert (pinned.path, pinned.sha256) == (described.path, described.sha256)


def test_iceberg_snapshots_are_pinned_and_recorded(tmp_path, monkeypatch):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("lake", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("sales")
    frame = pl.DataFrame({"x": [1, 2, 3]}).to_arrow()
    table = catalog.create_table("sales.orders", schema=frame.schema)
    table.append(frame)
    first = table.current_snapshot().snapshot_id
    table.append(frame)
    second = catalog.load_table("sales.orders").current_snapshot().snapshot_id

    metadata = catalog.load_table("sales.orders").metadata_location
    described = describe_data_file(expand_data_patterns([f"iceberg:{metadata}"], tmp_path)[0][0], tmp_path)
    assert described.path == f"iceberg:{metadata}@{second}"  # the snapshot read is named, even unpinned
    assert described.rows == 6
    monkeypatch.setattr("pyiceberg.catalog._ENV_CONFIG.config",
                        {"catalog": {"lake": {"uri": f"sqlite:///{tmp_path}/catalog.db",
                                              "warehouse": f"file://{tmp_path}/wh"}}}, raising=False)
    now = describe_data_file(expand_data_patterns(["iceberg:lake/sales.orders"], tmp_path)[0][0], tmp_path)
    then = describe_data_file(expand_data_patterns([f"iceberg:lake/sales.orders@{first}"], tmp_path)[0][0],
                              tmp_path)
    assert now.path == f"iceberg:lake/sales.orders@{second}"
    assert (then.path, then.rows) == (f"iceberg:lake/sales.orders@{first}", 3)


@pytest.mark.slow
def test_train_records_remote_inputs_in_lineage_and_hits_the_cache_until_they_change(project, s3, run_cli,
                                                                                     tmp_path, capsys):
    from deltalake import write_deltalake

    server, bucket = s3
    upload(server, bucket, "train/a.parquet", pl.DataFrame({"x": [1, 2]}), tmp_path)
    table = project.root / "tables" / "labels"
    write_deltalake(str(table), pl.DataFrame({"y": [0, 1]}).to_arrow())
    project.write("src/model.py", "W = 1\n")
    project.config(f"""\
        train:
          code-paths: [src]
          data: ["s3://{bucket}/train/*.parquet", "delta:tables/labels"]
          telemetry-interval: 0.2
        """)

    code, out, err = run_cli("train", "--", *QUICK)
    assert code == 0, err
    run = project.client().get_run(project.dotenv()["MLCI_RUN_ID"])
    recorded = {entry["path"] for entry in json.loads(run.data.tags["mlci.data"])}
    assert recorded == {f"s3://{bucket}/train/a.parquet", "delta:tables/labels@v0"}
    assert run.data.tags["mlci.data_artifacts"] == "none"  # remote data is named, not copied
    assert SECRET_KEY not in out + err

    code, _, err = run_cli("train", "--", *QUICK)
    assert code == 0 and project.dotenv()["MLCI_CACHE_HIT"] == "true", err

    write_deltalake(str(table), pl.DataFrame({"y": [1]}).to_arrow(), mode="append")  # new table version
    code, _, err = run_cli("train", "--", *QUICK)
    assert code == 0 and project.dotenv()["MLCI_CACHE_HIT"] == "false", err
