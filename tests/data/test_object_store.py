"""Sources in object storage: a real S3 API (moto's server on 127.0.0.1), read by polars' own cloud readers.

Credentials reach mlci only through the standard AWS_* variables, the way a CI
job sets them; every test that can print something greps it for the secret.
"""

from __future__ import annotations

import uuid

import polars as pl
import pytest

from tests.data.conftest import base_frame, read_json
from tests.servers.moto_s3 import SECRET_KEY

pytestmark = [pytest.mark.xdist_group("moto_s3")]

CONTRACT = """\
columns:
  id: {dtype: int64, not-null: true, unique: true}
  amount: {dtype: float64, min: 0}
  code: {dtype: string, regex: 'AB-\\d{3}'}
"""


@pytest.fixture
def s3(s3_server, monkeypatch, clean_env):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def bucket(s3):
    name = f"lake-{uuid.uuid4().hex[:10]}"
    s3.client().create_bucket(Bucket=name)
    return name


def put_frame(s3, bucket: str, key: str, frame: pl.DataFrame, tmp_path) -> str:
    local = tmp_path / uuid.uuid4().hex
    if key.endswith(".csv"):
        frame.write_csv(local)
    else:
        frame.write_parquet(local)
    s3.client().upload_file(str(local), bucket, key)
    return f"s3://{bucket}/{key}"


def no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET_KEY not in text


def test_a_glob_in_s3_checks_each_object_like_a_local_file(project, s3, bucket, run_cli, tmp_path):
    (project / "contract.yml").write_text(CONTRACT)
    frame = base_frame()
    put_frame(s3, bucket, "raw/part-0.parquet", frame.head(60), tmp_path)
    put_frame(s3, bucket, "raw/part-1.parquet", frame.tail(40), tmp_path)
    put_frame(s3, bucket, "raw/notes.csv", frame.head(3), tmp_path)  # not matched by the glob

    code, out, err = run_cli("data", "check", f"s3://{bucket}/raw/*.parquet", "--contract", "contract.yml")

    assert code == 0, err
    report = read_json(project / "mlci-out" / "data-check.json")
    assert [f["path"] for f in report["files"]] == [f"s3://{bucket}/raw/part-0.parquet",
                                                    f"s3://{bucket}/raw/part-1.parquet"]
    assert [f["rows"] for f in report["files"]] == [60, 40]
    no_secret(out, err, (project / "mlci-out" / "data-check.md").read_text())


def test_a_hive_partitioned_folder_is_one_dataset_with_its_partition_columns(project, s3, bucket, run_cli, tmp_path):
    frame = base_frame()
    for region, part in (("eu", frame.head(50)), ("us", frame.tail(50))):
        put_frame(s3, bucket, f"events/region={region}/part-0.parquet", part, tmp_path)
    (project / "mlci.yml").write_text(f"""\
data:
  sources:
    events:
      path: s3://{bucket}/events/
      contract:
        columns:
          id: {{dtype: int64, unique: true}}
          region: {{allowed: [eu, us], not-null: true}}
        rows: {{min: 100, max: 100}}
""")
    code, out, err = run_cli("data", "check")
    assert code == 0, out + err
    report = read_json(project / "mlci-out" / "data-check.json")
    assert [(f["path"], f["rows"]) for f in report["files"]] == [(f"s3://{bucket}/events/", 100)]


def test_failures_in_s3_data_fail_the_check_with_examples(project, s3, bucket, run_cli, tmp_path):
    (project / "contract.yml").write_text(CONTRACT)
    bad = base_frame().with_columns(
        pl.when(pl.col("id").is_in([7, 70])).then(-5.0).otherwise(pl.col("amount")).alias("amount"))
    url = put_frame(s3, bucket, "bad.parquet", bad, tmp_path)

    code, out, err = run_cli("data", "check", url, "--contract", "contract.yml")

    assert code == 1
    rule = next(r for r in read_json(project / "mlci-out" / "data-check.json")["files"][0]["rules"]
                if r["name"] == "amount: min >= 0")
    assert rule["failing_rows"] == 2
    assert [e["row"] for e in rule["examples"]] == [7, 70]
    no_secret(out, err)


def test_a_url_that_names_nothing_is_a_config_error(project, s3, bucket, run_cli):
    (project / "contract.yml").write_text(CONTRACT)
    code, _, err = run_cli("data", "check", f"s3://{bucket}/missing/*.parquet", "--contract", "contract.yml")
    assert code == 2
    assert f"no object matches 's3://{bucket}/missing/*.parquet'" in err


def test_an_unreachable_store_exits_3_naming_the_url_without_credentials(project, s3, monkeypatch, run_cli):
    from tests.servers.postgres import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    (project / "contract.yml").write_text(CONTRACT)
    code, out, err = run_cli("data", "check", "s3://lake/x/*.parquet", "--contract", "contract.yml")
    assert code == 3, err
    assert "s3://lake/x/*.parquet" in err
    assert "AWS_ACCESS_KEY_ID" in err  # the hint says where credentials come from
    no_secret(out, err)


def test_drift_reads_reference_and_current_from_s3(project, s3, bucket, run_cli, tmp_path):
    frame = base_frame(2000)
    reference = put_frame(s3, bucket, "ref.parquet", frame, tmp_path)
    shifted = put_frame(s3, bucket, "cur.parquet", frame.with_columns(pl.col("amount") + 900), tmp_path)
    code, out, err = run_cli("data", "drift", "--reference", reference, shifted, "--columns", "amount,qty",
                             "--no-plots")
    assert code == 0, err
    report = read_json(project / "mlci-out" / "drift.json")
    columns = {c["column"]: c["status"] for c in report["datasets"][0]["columns"]}
    assert columns == {"amount": "drift", "qty": "ok"}
    no_secret(out, err)



def test_duckdb_reads_the_bucket_with_credentials_from_the_environment(project, s3, bucket, run_cli, tmp_path):
    (project / "contract.yml").write_text(CONTRACT)
    bad = base_frame().with_columns(
        pl.when(pl.col("id") == 3).then(-5.0).otherwise(pl.col("amount")).alias("amount"))
    url = put_frame(s3, bucket, "duck/part-0.parquet", bad, tmp_path)
    code, out, err = run_cli("data", "check", url, "--contract", "contract.yml", "--engine", "duckdb")
    assert code == 1, err
    (checked,) = read_json(project / "mlci-out" / "data-check.json")["files"]
    assert (checked["path"], checked["engine"]) == (url, "duckdb")
    rule = next(r for r in checked["rules"] if r["name"] == "amount: min >= 0")
    assert (rule["failing_rows"], [e["row"] for e in rule["examples"]]) == (1, [3])
    no_secret(out, err)


def test_a_delta_table_in_s3_is_read_at_a_pinned_version(project, s3, bucket, run_cli):
    from deltalake import write_deltalake

    table = f"s3://{bucket}/tables/orders"
    write_deltalake(table, base_frame().to_arrow())
    bad = base_frame(3).with_columns(pl.lit(-1.0).alias("amount"), pl.col("id") + 1000)
    write_deltalake(table, bad.to_arrow(), mode="append")
    (project / "contract.yml").write_text(CONTRACT)

    code, _, err = run_cli("data", "check", f"delta:{table}", "--contract", "contract.yml")
    assert code == 1, err
    (latest,) = read_json(project / "mlci-out" / "data-check.json")["files"]
    assert (latest["path"], latest["version"], latest["rows"]) == (f"delta:{table}@v1", 1, 103)

    code, _, err = run_cli("data", "check", f"delta:{table}@v0", "--contract", "contract.yml")
    assert code == 0, err
    (pinned,) = read_json(project / "mlci-out" / "data-check.json")["files"]
    assert (pinned["path"], pinned["version"], pinned["rows"]) == (f"delta:{table}@v0", 0, 100)
