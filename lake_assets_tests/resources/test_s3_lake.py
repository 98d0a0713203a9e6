"""The lake on S3: LAKE_ROOT and LAKE_LANDING as s3:// URIs against a real HTTP S3 endpoint
(moto in server mode on loopback), configured only through the standard AWS variables.

The demo source lands two days of DMS files in s3://<bucket>/landing; `lake-assets sync` runs
as a user runs it (a fresh process, LAKE_* and AWS_* in its environment) and writes
s3://<bucket>/lake. The same two days synced into a local lake are the reference: every table
of every layer must hold the same rows on S3, read back with delta-rs (an independent reader,
through deltalake.QueryBuilder).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from lake_assets.lib import delta, storage
from lake_assets.sources.shop.simulator import simulate
from lake_assets_tests.resources.conftest import new_bucket, s3_keys, set_aws_env

pytestmark = pytest.mark.slow

TODAY = dt.date(2024, 3, 1)
DAYS = 2
SEED = 7
SCALE = 0.2  # ~1,800 change rows in 41 files: every table, every op, quick
LAYERS = ("raw", "bronze", "silver", "gold")
SHOP_TABLES = ("customers", "products", "orders", "order_items")
SHOP_GOLD = (
    "daily_sales",
    "product_daily_sales",
    "customer_lifetime_value",
    "revenue_by_country_at_order",
)
SHOP_HISTORY = ("customers_history", "products_history")


def land(landing: str) -> None:
    simulate(landing, DAYS, seed=SEED, scale=SCALE, today=TODAY)


def read_rows(uri: str) -> tuple[pa.Schema, list[dict]]:
    """(schema without field metadata, rows in a canonical order) of a Delta table, by delta-rs."""
    from deltalake import DeltaTable, QueryBuilder

    table = DeltaTable(uri, storage_options=storage.storage_options(uri) or None)
    result = pa.table(QueryBuilder().register("t", table).execute("SELECT * FROM t").read_all())
    schema = pa.schema([pa.field(f.name, f.type, f.nullable) for f in result.schema])
    return schema, sorted(result.to_pylist(), key=repr)


def delta_tables_on_s3(endpoint: str, bucket: str, prefix: str) -> set[str]:
    """<layer>/<source>/<table> of every Delta log under s3://bucket/prefix, listed with boto3."""
    out = set()
    for key in s3_keys(endpoint, bucket, prefix + "/"):
        rel = key[len(prefix) + 1 :]
        head, sep, tail = rel.partition("/_delta_log/")
        if sep and tail.endswith(".json") and not head.startswith("_state/"):
            out.add(head)
    return out


def delta_tables_local(root: Path) -> set[str]:
    return {
        p.parent.relative_to(root).as_posix()
        for p in root.rglob("_delta_log")
        if not p.parent.relative_to(root).as_posix().startswith("_state/")
    }


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lake_assets.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@dataclass
class S3Lake:
    endpoint: str
    bucket: str
    root: str
    landing: str
    env: dict[str, str]
    sync: subprocess.CompletedProcess
    seconds: float


@pytest.fixture(scope="module")
def s3_lake(moto_endpoint):
    """Two days landed on S3 and synced there by `python -m lake_assets.cli sync`."""
    with pytest.MonkeyPatch.context() as mp:
        set_aws_env(mp, moto_endpoint)
        bucket = new_bucket(moto_endpoint)
        root, landing = f"s3://{bucket}/lake", f"s3://{bucket}/landing"
        land(landing)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "DAGSTER_HOME"))}
        env.update(LAKE_ROOT=root, LAKE_LANDING=landing, RUST_LOG="error")
        started = time.monotonic()
        result = run_cli("sync", env=env)
        yield S3Lake(moto_endpoint, bucket, root, landing, env, result, time.monotonic() - started)


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory) -> Path:
    """The same two days synced into a local lake, in this process."""
    import dagster as dg

    from lake_assets.catalog import load_catalog
    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings
    from lake_assets.sync import sync

    tmp = tmp_path_factory.mktemp("local_lake")
    land(str(tmp / "landing"))
    settings = Settings.load(str(tmp / "lake"), str(tmp / "landing"), None, "local")
    lines: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        result = sync(
            settings,
            build_definitions(settings),
            load_catalog(settings.sources),
            instance,
            lines.append,
        )
    assert result.ok, "\n".join(result.failures + lines)
    return tmp / "lake"


def test_sync_on_s3_succeeds(s3_lake):
    out = s3_lake.sync.stdout + s3_lake.sync.stderr
    assert s3_lake.sync.returncode == 0, out
    assert f"-> {s3_lake.root} (local)" in out
    assert "with 0 failure(s)" in out


def test_every_layer_is_a_delta_table_on_s3(s3_lake, local_lake):
    on_s3 = delta_tables_on_s3(s3_lake.endpoint, s3_lake.bucket, "lake")
    expected = {f"{layer}/shop/{t}" for layer in ("raw", "bronze", "silver") for t in SHOP_TABLES}
    expected |= {f"gold/shop/{g}" for g in SHOP_GOLD}
    expected |= {f"{layer}/shop/{t}" for layer in ("bronze", "silver") for t in SHOP_HISTORY}
    assert expected <= on_s3, sorted(expected - on_s3)
    assert on_s3 == delta_tables_local(local_lake)
    # The lake's own bookkeeping lives on S3 too, next to the tables.
    assert any(
        k.startswith("lake/_state/shop/")
        for k in s3_keys(s3_lake.endpoint, s3_lake.bucket, "lake/_state/")
    )
    # A run's batch and staging folders are removed after its write. (pyarrow's delete_dir
    # leaves the parent's empty directory marker, e.g. `_state/shop/orders/batch/`, the same
    # empty folder a local lake keeps.)
    assert not [
        k
        for k in s3_keys(s3_lake.endpoint, s3_lake.bucket, "lake/_state/")
        if ("/staging/" in k or "/batch/" in k) and not k.endswith("/")
    ]


@pytest.mark.parametrize("table", SHOP_TABLES)
def test_bronze_on_s3_equals_local(s3_lake, local_lake, table):
    s3_schema, s3_rows = read_rows(f"{s3_lake.root}/bronze/shop/{table}")
    local_schema, local_rows = read_rows(str(local_lake / "bronze" / "shop" / table))
    assert s3_schema == local_schema
    assert len(s3_rows) > 0
    assert s3_rows == local_rows


def test_every_table_on_s3_equals_local(s3_lake, local_lake):
    tables = sorted(delta_tables_local(local_lake))
    assert {t.split("/")[0] for t in tables} == set(LAYERS)
    differ = []
    for name in tables:
        if read_rows(f"{s3_lake.root}/{name}") != read_rows(str(local_lake / name)):
            differ.append(name)
    assert not differ


def test_log_inspection_through_delta_rs(s3_lake, local_lake):
    """lake_assets.lib.delta reads the S3 logs the way it reads local ones."""
    s3_path = f"{s3_lake.root}/gold/shop/daily_sales"
    local_path = str(local_lake / "gold" / "shop" / "daily_sales")
    assert delta.exists(s3_path) and not delta.exists(f"{s3_lake.root}/gold/shop/absent")
    assert delta.version(s3_path) == delta.version(local_path)
    s3_parts = sorted(v["order_date"] for v in delta.files_at(s3_path).values())
    assert s3_parts == sorted(v["order_date"] for v in delta.files_at(local_path).values())
    assert all(p.startswith("order_date=") for p in delta.files_at(s3_path))


def test_second_sync_on_s3_changes_nothing(s3_lake):
    bronze = {t: read_rows(f"{s3_lake.root}/bronze/shop/{t}") for t in SHOP_TABLES}
    raw_versions = {t: delta.version(f"{s3_lake.root}/raw/shop/{t}") for t in SHOP_TABLES}
    again = run_cli("sync", env=s3_lake.env)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "raw/shop: nothing new landed" in out
    assert {t: delta.version(f"{s3_lake.root}/raw/shop/{t}") for t in SHOP_TABLES} == raw_versions
    assert {t: read_rows(f"{s3_lake.root}/bronze/shop/{t}") for t in SHOP_TABLES} == bronze


def test_engine_started_before_the_s3_variables_reaches_s3(moto_endpoint, monkeypatch):
    """The embedded engine reads the AWS variables when it first uses a bucket, not when it
    starts: a session running before they were set writes, merges and reads on S3. Without
    AWS_ALLOW_HTTP in the environment: the engine derives it from the http:// endpoint."""
    from lake_assets.lib.engine import local_spark

    local_spark().range(1).collect()  # the process's server is up (maybe since earlier tests)
    set_aws_env(monkeypatch, moto_endpoint, allow_http=False)
    assert "AWS_ALLOW_HTTP" not in os.environ
    bucket = new_bucket(moto_endpoint)
    spark = local_spark()
    assert os.environ["AWS_ALLOW_HTTP"] == "true"
    path = f"s3://{bucket}/lake/bronze/s/t"
    spark.createDataFrame([(1, "a"), (2, "b")], "id bigint, v string").write.format("delta").save(
        path
    )
    spark.sql(
        f"MERGE INTO delta.`{path}` t USING (SELECT 2L AS id, 'B' AS v UNION ALL SELECT 3L, 'c') s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    ).collect()
    assert sorted(tuple(r) for r in spark.read.format("delta").load(path).collect()) == [
        (1, "a"),
        (2, "B"),
        (3, "c"),
    ]
    assert delta.version(path) == 1
    assert read_rows(path)[1] == [{"id": 1, "v": "a"}, {"id": 2, "v": "B"}, {"id": 3, "v": "c"}]
    keys = s3_keys(moto_endpoint, bucket, "lake/bronze/s/t/_delta_log/")
    assert "lake/bronze/s/t/_delta_log/00000000000000000001.json" in keys
