"""`mlci data check` against pandera, dataframely and a hand-written fused polars query.

All four check the same rules on the same seeded Parquet file (9 columns:
ints, floats, categories, patterned strings, timestamps, a few nulls). Each
runs as a whole process (interpreter start, imports, read, check, report),
several times, alternating; we report the median wall time and the peak RSS of
each process (os.wait4 rusage, so per process).

Targets, judged on valid data AND on the same file with planted violations
(ten kinds, 30 rows, spread over the file; mlci also reports example rows):
mlci <= 0.40x pandera wall, <= 0.6x dataframely wall, <= 1.3x the fused query's
wall, and mlci's peak RSS below pandera's.

Scale, after that:
- 100M rows through the streaming path: mlci's peak RSS must stay <= 2 GiB;
- the same contract on DuckDB and on Spark local for 10M rows (information,
  with each engine's fixed start-up cost measured on a 1-row file);
- reading the file from S3 on loopback (moto's server) against local disk
  (information).
Big files are generated once into benchmarks/.data/ (git-ignored) and reused.

    python benchmarks/data_check.py [--rows 1000000] [--runs 5] [--big-rows 100000000] [--engine-rows 10000000]
                                    [--skip-big] [--skip-engines] [--skip-s3] [--skip-failing] [--no-targets]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_VS_PANDERA = 0.40
TARGET_VS_DATAFRAMELY = 0.6
TARGET_VS_FUSED = 1.3
DATA_DIR = Path(__file__).resolve().parent / ".data"
BIG_RSS_LIMIT = 2 * 1024**3
SEED = 20240601
SEGMENTS = ["retail", "wholesale", "online", "partner", "staff"]
COUNTRIES = ["DE", "FR", "IT", "ES", "NL", "PL", "SE", "AT"]

CONTRACT = """\
columns:
  id: {dtype: int64, not-null: true, unique: true}
  quantity: {dtype: int64, min: 0, max: 1000}
  amount: {dtype: float64, min: 0, max-null-fraction: 0.01}
  score:
    dtype: float64
    mean: {min: -0.05, max: 0.05}
    std: {min: 0.95, max: 1.05}
    quantiles: [{q: 0.5, min: -0.05, max: 0.05}]
  segment: {dtype: string, allowed: [retail, wholesale, online, partner, staff]}
  country: {dtype: string, not-null: true, allowed: [DE, FR, IT, ES, NL, PL, SE, AT]}
  sku: {dtype: string, regex: 'SKU-\\d{6}', length: {min: 10, max: 10}}
  email: {dtype: string, regex: '[a-z0-9.]+@[a-z]+\\.[a-z]+'}
  created_at: {dtype: datetime, max-age: 400d}
no-extra-columns: true
rows: {min: 1, max: 200000000}
expressions:
  - {name: big orders have a quantity, sql: "amount IS NULL OR amount < 5000 OR quantity > 0"}
"""

# The same rules as one hand-written select, collected once.
FUSED = r"""
import os
import sys
from datetime import datetime, timedelta, timezone
import polars as pl

path = sys.argv[1]
# The same engine choice as mlci: in-memory for small files, streaming from 64 MiB on.
engine = "streaming" if os.path.getsize(path) >= 64 * 1024 * 1024 else "in-memory"
lf = pl.scan_parquet(path)
schema = lf.collect_schema()
expected = {"id": pl.Int64, "quantity": pl.Int64, "amount": pl.Float64, "score": pl.Float64,
            "segment": pl.String, "country": pl.String, "sku": pl.String, "email": pl.String}
schema_ok = set(schema) == set(expected) | {"created_at"} and all(schema[k] == v for k, v in expected.items())
schema_ok = schema_ok and isinstance(schema["created_at"], pl.Datetime)
segments = ["retail", "wholesale", "online", "partner", "staff"]
countries = ["DE", "FR", "IT", "ES", "NL", "PL", "SE", "AT"]
row = lf.select(
    rows=pl.len(),
    id_null=pl.col("id").is_null().sum(),
    id_dup=pl.col("id").count() - pl.col("id").drop_nulls().n_unique(),
    qty_range=((pl.col("quantity") < 0) | (pl.col("quantity") > 1000)).sum(),
    amount_min=(pl.col("amount") < 0).sum(),
    amount_nulls=pl.col("amount").is_null().sum(),
    score_mean=pl.col("score").mean(),
    score_std=pl.col("score").std(),
    score_median=pl.col("score").quantile(0.5, "linear"),
    segment_bad=(~pl.col("segment").is_in(segments)).sum(),
    country_null=pl.col("country").is_null().sum(),
    country_bad=(~pl.col("country").is_in(countries)).sum(),
    sku_regex=(~pl.col("sku").str.contains(r"^(?:SKU-\d{6})$")).sum(),
    sku_len=((pl.col("sku").str.len_chars() < 10) | (pl.col("sku").str.len_chars() > 10)).sum(),
    email_regex=(~pl.col("email").str.contains(r"^(?:[a-z0-9.]+@[a-z]+\.[a-z]+)$")).sum(),
    newest=pl.col("created_at").max(),
    sql=(~pl.sql_expr("amount IS NULL OR amount < 5000 OR quantity > 0")).sum(),
).collect(engine=engine).row(0, named=True)
fresh = datetime.now(timezone.utc) - row["newest"].replace(tzinfo=timezone.utc) <= timedelta(days=400)
print("schema ok" if schema_ok else "schema mismatch", "fresh" if fresh else "stale", row)
"""

PANDERA = r"""
import sys
from datetime import datetime, timedelta
import polars as pl
import pandera.polars as pa

path = sys.argv[1]
cutoff = datetime.now() - timedelta(days=400)


def agg(expr, name):
    return pa.Check(lambda data: data.lazyframe.select(expr(pl.col(data.key))), name=name)


schema = pa.DataFrameSchema(
    {
        "id": pa.Column(pl.Int64, nullable=False, unique=True),
        "quantity": pa.Column(pl.Int64, checks=[pa.Check.in_range(0, 1000)]),
        "amount": pa.Column(pl.Float64, nullable=True, checks=[
            pa.Check.ge(0),
            pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).null_count() / pl.len() <= 0.01),
                     name="max_null_fraction"),
        ]),
        "score": pa.Column(pl.Float64, checks=[
            agg(lambda c: c.mean().is_between(-0.05, 0.05), "mean"),
            agg(lambda c: c.std().is_between(0.95, 1.05), "std"),
            agg(lambda c: c.quantile(0.5, "linear").is_between(-0.05, 0.05), "median"),
        ]),
        "segment": pa.Column(pl.String, nullable=True,
                             checks=[pa.Check.isin(["retail", "wholesale", "online", "partner", "staff"])]),
        "country": pa.Column(pl.String, nullable=False,
                             checks=[pa.Check.isin(["DE", "FR", "IT", "ES", "NL", "PL", "SE", "AT"])]),
        "sku": pa.Column(pl.String, checks=[pa.Check.str_matches(r"^SKU-\d{6}$"), pa.Check.str_length(10, 10)]),
        "email": pa.Column(pl.String, checks=[pa.Check.str_matches(r"^[a-z0-9.]+@[a-z]+\.[a-z]+$")]),
        "created_at": pa.Column(pl.Datetime("us"), checks=[agg(lambda c: c.max() >= cutoff, "max_age")]),
    },
    strict=True,
    checks=[
        pa.Check(lambda d: d.lazyframe.select(pl.len().is_between(1, 50_000_000)), name="rows"),
        pa.Check(lambda d: d.lazyframe.select(pl.sql_expr("amount IS NULL OR amount < 5000 OR quantity > 0")),
                 name="big orders have a quantity"),
    ],
)
frame = pl.read_parquet(path)
try:
    schema.validate(frame, lazy=True)
    print("valid")
except pa.errors.SchemaErrors as exc:
    print(len(exc.failure_cases), "failure cases")
"""


# Planted violations: (rule they break, column, value); each is planted in PER_RULE rows spread
# over the file, so every engine must find the same failing counts in every part of it.
PER_RULE = 3
VIOLATIONS = [
    ("quantity: min >= 0", "quantity", -1),
    ("quantity: max <= 1000", "quantity", 5000),
    ("amount: min >= 0", "amount", -3.5),
    ("segment: in [...]", "segment", "reseller"),
    ("country: not null", "country", None),
    ("country: in [...]", "country", "XX"),
    ("sku: matches + length", "sku", "SKU-12"),
    ("email: matches", "email", "no-at-sign"),
    ("id: unique", "id", "duplicate"),
    ("big orders have a quantity", "amount", 9000.0),
]


DATAFRAMELY = r"""
import sys
import polars as pl
import dataframely as dy

SEGMENTS = ["retail", "wholesale", "online", "partner", "staff"]
COUNTRIES = ["DE", "FR", "IT", "ES", "NL", "PL", "SE", "AT"]


class Orders(dy.Schema):
    id = dy.Int64(nullable=False, unique=True)
    quantity = dy.Int64(nullable=True, min=0, max=1000)
    amount = dy.Float64(nullable=True, min=0)
    score = dy.Float64(nullable=True)
    segment = dy.String(nullable=True, check=lambda c: c.is_in(SEGMENTS))
    country = dy.String(nullable=False, check=lambda c: c.is_in(COUNTRIES))
    sku = dy.String(nullable=True, regex=r"^SKU-\d{6}$", min_length=10, max_length=10)
    email = dy.String(nullable=True, regex=r"^[a-z0-9.]+@[a-z]+\.[a-z]+$")
    created_at = dy.Datetime(nullable=True)

    @dy.rule()
    def big_orders_have_a_quantity(cls) -> pl.Expr:
        return pl.sql_expr("amount IS NULL OR amount < 5000 OR quantity > 0")


lf = pl.scan_parquet(sys.argv[1])
failures = Orders.filter(lf).failure.counts()  # row rules, as dataframely reports them
# Its schemas hold row rules only; the table statistics run as one extra query, as a user would add.
stats = lf.select(rows=pl.len(), mean=pl.col("score").mean(), std=pl.col("score").std(),
                  median=pl.col("score").quantile(0.5, "linear"), newest=pl.col("created_at").max(),
                  null_share=pl.col("amount").null_count() / pl.len()).collect().row(0, named=True)
print(failures, stats)
"""


def planted_rows(rows: int) -> dict[int, tuple[str, object]]:
    """Row index -> (column, value) for every planted violation, spread evenly over `rows`."""
    planted: dict[int, tuple[str, object]] = {}
    slots = len(VIOLATIONS) * PER_RULE
    for slot in range(slots):
        _, column, value = VIOLATIONS[slot % len(VIOLATIONS)]
        planted[(rows * (2 * slot + 1)) // (2 * slots)] = (column, value)
    return planted


def generate(path: Path, rows: int, *, bad: bool = False, seed: int = SEED, chunk: int = 2_000_000) -> None:
    """Write the seeded test file in chunks (bounded memory for the big cases)."""
    from datetime import datetime, timedelta

    import numpy as np
    import polars as pl
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    start = datetime.now().replace(microsecond=0) - timedelta(days=365)
    planted = planted_rows(rows) if bad else {}
    writer = None
    base = None
    try:
        for offset in range(0, rows, chunk):
            n = min(chunk, rows - offset)
            if base is None:
                ids = np.arange(offset, offset + n, dtype=np.int64)
                amount = rng.lognormal(3.0, 1.0, n)
                amount[rng.random(n) < 0.005] = np.nan  # ~0.5% nulls
                quantity = rng.integers(0, 500, n)
                sku_numbers = rng.integers(0, 1_000_000, n)
                base = _chunk(rng, ids, amount, quantity, sku_numbers, start)
                frame = base
            else:
                # Later chunks repeat the first one's values under fresh ids: the same distributions,
                # unique ids, and a 100M-row file in minutes rather than hours.
                frame = base.head(n).with_columns(pl.int_range(offset, offset + n, dtype=pl.Int64).alias("id"))
            here = {row: planted[row] for row in planted if offset <= row < offset + n}
            if here:
                frame = _plant(frame, here)
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table, row_group_size=256_000)
    finally:
        if writer is not None:
            writer.close()


def _plant(frame, here: dict[int, tuple[str, object]]):
    import polars as pl

    updates = []
    for column in {column for column, _ in here.values()}:
        expr = pl.col(column)
        for row, (target, value) in here.items():
            if target != column:
                continue
            if value == "duplicate":
                value = row - 1  # the previous row's id
            if column == "amount" and value == 9000.0:
                # a big order with no quantity breaks the custom SQL expression only
                frame = frame.with_columns(pl.when(pl.col("id") == row).then(0).otherwise(pl.col("quantity"))
                                           .alias("quantity"))
            expr = pl.when(pl.col("id") == row).then(pl.lit(value, dtype=frame.schema[column])).otherwise(expr)
        updates.append(expr.alias(column))
    return frame.with_columns(updates)


def _chunk(rng, ids, amount, quantity, sku_numbers, start):
    import numpy as np
    import polars as pl

    n = len(ids)
    return pl.DataFrame({
        "id": ids,
        "quantity": quantity.astype(np.int64),
        "amount": pl.Series(amount).fill_nan(None),
        "score": rng.normal(0.0, 1.0, n),
        "segment": np.array(SEGMENTS)[rng.integers(0, len(SEGMENTS), n)],
        "country": np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)],
        "sku": sku_numbers,
        "email": ids % 50_000,
        "created_at": rng.integers(0, 365 * 86400, n),
    }).with_columns(
        sku=pl.lit("SKU-") + pl.col("sku").cast(pl.String).str.zfill(6),
        email=pl.lit("user") + pl.col("email").cast(pl.String) + pl.lit("@example.com"),
        created_at=pl.lit(start) + pl.duration(seconds=pl.col("created_at")),
    )


def make_data(path: Path, rows: int, *, bad: bool = False) -> None:
    """Generate in a child process: this process must stay small, because a child's peak RSS
    as the kernel reports it includes the parent's pages at fork time."""
    flags = ["--bad"] if bad else []
    subprocess.run([sys.executable, __file__, "--generate", str(path), "--rows", str(rows), *flags], check=True)


def cached_data(rows: int, *, bad: bool) -> Path:
    """A big file in benchmarks/.data/ (git-ignored), generated once and reused across runs."""
    DATA_DIR.mkdir(exist_ok=True)
    path = DATA_DIR / f"orders-{rows}{'-bad' if bad else ''}.parquet"
    if not path.exists():
        partial = path.with_suffix(".partial")
        make_data(partial, rows, bad=bad)
        partial.rename(path)
    return path


def _child_env(work: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Bytecode caching on, into a scratch prefix: every tool runs as it would once installed
    (pip compiles .pyc files), even where PYTHONDONTWRITEBYTECODE is set for development."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env.update(extra or {})
    return env


def run_once(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit code) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=_child_env(cwd, env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.stderr.close()
    if proc.returncode not in (0, 1):  # mlci exits 1 on the planted failures; anything else is a broken run
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-2000:]}")
    return wall, usage.ru_maxrss * 1024, proc.returncode


def measure(commands: dict[str, list[str]], cwd: Path, runs: int) -> dict[str, tuple[float, int]]:
    for cmd in commands.values():
        run_once(cmd, cwd)  # warm the page cache and write the bytecode cache
    walls: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[int]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():  # alternate so noise hits all equally
            wall, peak, _ = run_once(cmd, cwd)
            walls[name].append(wall)
            rss[name].append(peak)
    return {name: (statistics.median(walls[name]), max(rss[name])) for name in commands}


def _mib(n: int) -> str:
    return f"{n / 1024**2:7.0f} MiB"


def compare(work: Path, data: Path, runs: int, title: str) -> dict[str, tuple[float, int]]:
    py = sys.executable
    commands = {
        "mlci": mlci_command(work, data),
        "pandera": [py, "pandera_check.py", str(data)],
        "dataframely": [py, "dataframely_check.py", str(data)],
        "fused": [py, "fused.py", str(data)],
    }
    results = measure(commands, work, runs)
    print(f"{title}: {data.stat().st_size / 1024**2:.1f} MiB Parquet, median of {runs} whole-process runs")
    for name, (wall, peak) in results.items():
        print(f"  {name:<12} wall {wall * 1000:8.0f} ms   peak RSS {_mib(peak)}")
    return results


def mlci_command(work: Path, data: Path | str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mlci", "--out-dir", str(work / "out"), "data", "check", str(data),
            "--contract", "contract.yml", *extra]


def verdicts(results: dict[str, tuple[float, int]]) -> bool:
    mlci_wall, mlci_rss = results["mlci"]
    ok = True
    for label, value, target in (("mlci/pandera wall", mlci_wall / results["pandera"][0], TARGET_VS_PANDERA),
                                 ("mlci/dataframely wall", mlci_wall / results["dataframely"][0],
                                  TARGET_VS_DATAFRAMELY),
                                 ("mlci/fused wall", mlci_wall / results["fused"][0], TARGET_VS_FUSED),
                                 ("mlci/pandera RSS", mlci_rss / results["pandera"][1], 1.0)):
        hit = value <= target if "RSS" not in label else value < target
        ok &= hit
        print(f"  {label:<22} {value:5.2f}x  (target {'<=' if 'RSS' not in label else '<'} {target:.2f}x)  "
              f"{'OK' if hit else 'MISSED'}")
    return ok


def big_case(work: Path, rows: int) -> bool:
    big = cached_data(rows, bad=True)
    # The fused query is not run here: its exact distinct count and median hold whole columns
    # (several GiB at this size), which is what mlci's partitioned passes avoid.
    wall, peak, code = run_once(mlci_command(work, big), work)
    big_ok = peak <= BIG_RSS_LIMIT
    print(f"{rows:,} rows x 9 columns, {big.stat().st_size / 1024**2:.0f} MiB Parquet "
          "(streaming, with planted violations), one run")
    print(f"  mlci         wall {wall * 1000:8.0f} ms   peak RSS {_mib(peak)}  (limit 2048 MiB)  "
          f"{'OK' if big_ok else 'MISSED'}  exit {code}")
    return big_ok


def engines_case(work: Path, rows: int) -> None:
    """The same contract on polars, DuckDB and Spark local (information), each also timed on a
    one-row file, which is its fixed cost: interpreter, imports, and for Spark the JVM start."""
    data = cached_data(rows, bad=True)
    tiny = work / "tiny.parquet"
    make_data(tiny, 10, bad=False)
    print(f"{rows:,} rows x 9 columns on each engine (with planted violations), one run each")
    for engine in ("polars", "duckdb", "spark"):
        fixed, _, _ = run_once(mlci_command(work, tiny, "--engine", engine), work)
        wall, peak, code = run_once(mlci_command(work, data, "--engine", engine), work)
        print(f"  {engine:<8} wall {wall * 1000:8.0f} ms   fixed start-up {fixed * 1000:6.0f} ms   "
              f"data work {max(wall - fixed, 0) * 1000:8.0f} ms   peak RSS {_mib(peak)} (mlci process)  exit {code}")


def s3_case(work: Path, data: Path, runs: int) -> None:
    """Local disk against the same object on S3 served by moto on 127.0.0.1 (information)."""
    import urllib.request

    import boto3

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.servers.moto_s3 import start_s3

    server = start_s3()
    try:
        env = server.env()
        client = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"])
        client.create_bucket(Bucket="bench")
        client.upload_file(str(data), "bench", "orders.parquet")
        urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=5).close()
        local, s3 = [], []
        for _ in range(runs):
            local.append(run_once(mlci_command(work, data), work)[0])
            s3.append(run_once(mlci_command(work, "s3://bench/orders.parquet"), work, env)[0])
        local_wall, s3_wall = statistics.median(local), statistics.median(s3)
        print(f"the same {data.stat().st_size / 1024**2:.1f} MiB file from local disk and from S3 on loopback "
              f"(moto), median of {runs} runs")
        print(f"  local disk   wall {local_wall * 1000:8.0f} ms")
        print(f"  loopback S3  wall {s3_wall * 1000:8.0f} ms   ({s3_wall / local_wall:4.2f}x local; "
              f"+{(s3_wall - local_wall) * 1000:.0f} ms)")
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big-rows", type=int, default=100_000_000)
    parser.add_argument("--engine-rows", type=int, default=10_000_000)
    parser.add_argument("--skip-big", action="store_true", help="skip the 100M-row streaming case")
    parser.add_argument("--skip-engines", action="store_true", help="skip DuckDB and Spark at --engine-rows")
    parser.add_argument("--skip-s3", action="store_true", help="skip loopback S3 against local disk")
    parser.add_argument("--skip-failing", action="store_true", help="skip the planted-violations scenario")
    parser.add_argument("--no-targets", action="store_true", help="report only; exit 0 even when a target is missed")
    parser.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)  # internal: write the data, exit
    parser.add_argument("--bad", action="store_true", help=argparse.SUPPRESS)  # internal: plant violations
    args = parser.parse_args()
    if args.generate:
        generate(Path(args.generate), args.rows, bad=args.bad)
        return 0

    with tempfile.TemporaryDirectory(prefix="mlci-bench-data-") as tmp:
        work = Path(tmp)
        (work / "contract.yml").write_text(CONTRACT)
        (work / "fused.py").write_text(FUSED)
        (work / "pandera_check.py").write_text(PANDERA)
        (work / "dataframely_check.py").write_text(DATAFRAMELY)

        clean = work / "clean.parquet"
        make_data(clean, args.rows)
        ok = verdicts(compare(work, clean, args.runs, f"{args.rows:,} rows x 9 columns, valid data"))
        clean.unlink()

        bad = work / "bad.parquet"
        if not args.skip_failing or not args.skip_s3:
            make_data(bad, args.rows, bad=True)
        if not args.skip_failing:
            slots = len(VIOLATIONS) * PER_RULE
            ok &= verdicts(compare(work, bad, args.runs, f"{args.rows:,} rows x 9 columns, {slots} planted "
                                   f"violations of {len(VIOLATIONS)} kinds"))
        if not args.skip_s3:
            s3_case(work, bad, args.runs)
        if not args.skip_engines:
            engines_case(work, args.engine_rows)
        if not args.skip_big:
            ok &= big_case(work, args.big_rows)
    return 0 if ok or args.no_targets else 1


if __name__ == "__main__":
    sys.exit(main())
