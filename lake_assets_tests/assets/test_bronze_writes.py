"""Bronze writes its own batches: its watermark in its own commit, all or nothing."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pyspark.sql.connect.session import SparkSession as ConnectSession

from lake_assets.lib import cdc, delta
from lake_assets.resources.spark import LocalSparkResource
from lake_assets_tests.conftest import read_delta

from ._lake import SRC, assert_ok, bronze, catalog, load, r
from ._lake import cdc as land_cdc

PATHS = ["arrow_and_delta_rs", "engine"]


@pytest.fixture(params=PATHS)
def apply_path(request, monkeypatch):
    if request.param == "engine":
        monkeypatch.setattr(LocalSparkResource, "embedded", lambda self: False)
    return request.param


def _two_syncs(lake) -> None:
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in (1, 2, 3)])
    assert_ok(lake.sync())
    land_cdc(
        lake,
        "t",
        "2024-01-02 10:00:00",
        [r("U", "2024-01-02 10:00:00", 1, "new"), r("D", "2024-01-02 10:00:00", 2)],
    )


def _bronze_path(lake) -> str:
    return str(lake.path("bronze", SRC, "t"))


def _tombstones(lake) -> list[dict]:
    path = lake.root / "_state" / SRC / "t" / "tombstones"
    return read_delta(path, "SELECT * FROM t ORDER BY id")


def _materialization(lake):
    record = lake.instance.get_latest_materialization_event(_key())
    return record.asset_materialization.metadata


def _key():
    import dagster as dg

    return dg.AssetKey(["bronze", SRC, "t"])


def test_the_watermark_is_in_bronzes_own_commit(lake, apply_path):
    _two_syncs(lake)
    assert_ok(lake.sync())
    raw_version = lake.version("raw", SRC, "t")
    table = DeltaTable(_bronze_path(lake))
    assert table.transaction_version(cdc.WATERMARK_APP_ID) == raw_version
    assert not (lake.root / "_state" / SRC / "t" / "watermark").exists()
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "v3"}]
    meta = _materialization(lake)
    assert {
        "changes",
        "changes_applied",
        "raw_version",
        "dagster/row_count",
        "delta_version",
        "dagster/column_schema",
        "dagster/uri",
    } <= set(meta)
    assert (meta["changes"].value, meta["changes_applied"].value) == (2, 2)
    assert meta["raw_version"].value == raw_version and meta["dagster/row_count"].value == 2
    assert meta["delta_version"].value == table.version()
    mine = [line for line in lake.lines if line.split()[:1] == [f"bronze/{SRC}/t"]]
    assert len(mine) == 1 and "changes=2 applied=2" in mine[0], lake.lines


def test_a_sync_with_nothing_new_makes_no_commit(lake, apply_path):
    _two_syncs(lake)
    assert_ok(lake.sync())
    before = lake.version("bronze", SRC, "t")
    assert_ok(lake.sync())
    assert lake.version("bronze", SRC, "t") == before


def test_a_lake_with_the_old_watermark_table_reads_it_once(lake, spark):
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in (1, 2, 3)])
    assert_ok(lake.sync())
    # The lake as bronze left it before: its watermark in a table of its own, not in bronze's log.
    rows = delta.read(spark, _bronze_path(lake)).toArrow()
    shutil.rmtree(_bronze_path(lake))
    spark.createDataFrame(rows).write.format("delta").save(_bronze_path(lake))
    mark = lake.root / "_state" / SRC / "t" / "watermark"
    old = spark.createDataFrame([(lake.version("raw", SRC, "t"),)], "raw_version bigint")
    old.write.format("delta").save(str(mark))
    land_cdc(lake, "t", "2024-01-02 10:00:00", [r("U", "2024-01-02 10:00:00", 1, "new")])
    assert_ok(lake.sync())
    # Only the new day's change was applied: the old watermark was read.
    meta = _materialization(lake)
    assert (meta["changes"].value, meta["changes_applied"].value) == (1, 1)
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 2, "v": "v2"}, {"id": 3, "v": "v3"}]
    table = DeltaTable(_bronze_path(lake))
    assert table.transaction_version(cdc.WATERMARK_APP_ID) == lake.version("raw", SRC, "t")
    assert not mark.exists()


def _fail_the_second_merge(monkeypatch, apply_path) -> list[str]:
    """The second MERGE a bronze run makes raises, after the first committed."""
    seen: list[str] = []
    if apply_path == "engine":
        original_sql = ConnectSession.sql

        def sql(self, query, *a, **k):
            if query.lstrip().upper().startswith("MERGE"):
                seen.append(query)
                if len(seen) == 2:
                    raise RuntimeError("injected fault: the second MERGE")
            return original_sql(self, query, *a, **k)

        monkeypatch.setattr(ConnectSession, "sql", sql)
    else:
        original_merge = DeltaTable.merge

        def merge(self, *a, **k):
            seen.append(self.table_uri)
            if len(seen) == 2:
                raise RuntimeError("injected fault: the second MERGE")
            return original_merge(self, *a, **k)

        monkeypatch.setattr(DeltaTable, "merge", merge)
    return seen


def _watermark(lake) -> tuple:
    """The watermark wherever it is: bronze's log, or the table of before."""
    old = lake.root / "_state" / SRC / "t" / "watermark"
    return (
        DeltaTable(_bronze_path(lake)).transaction_version("lake_assets.bronze.raw_version"),
        read_delta(old) if old.exists() else None,
    )


def _state(lake) -> tuple:
    rows = bronze(lake, "t", "id", "_seq")
    return rows, _tombstones(lake), _watermark(lake), lake.version("bronze", SRC, "t")


def test_a_failed_bronze_write_leaves_every_table_as_it_was(lake, apply_path, monkeypatch):
    _two_syncs(lake)
    before = _state(lake)
    with monkeypatch.context() as m:
        seen = _fail_the_second_merge(m, apply_path)
        result = lake.sync()
    assert len(seen) == 2
    assert not result.ok and "injected fault" in " ".join(result.failures)
    assert _state(lake) == before
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "v3"}]


def test_a_run_killed_between_its_commits_is_made_whole_by_the_next(lake, apply_path, monkeypatch):
    """Killed: nothing undoes the first commit (the tombstones' delete of key 2)."""
    _two_syncs(lake)
    with monkeypatch.context() as m:
        _fail_the_second_merge(m, apply_path)
        m.setattr(cdc.delta, "restore", lambda *a: None, raising=False)
        assert not lake.sync().ok
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "v3"}]
    assert [x["id"] for x in _tombstones(lake)] == [2]
    # A late change older than the delete does not bring key 2 back.
    land_cdc(lake, "t", "2024-01-02 09:00:00", [r("U", "2024-01-02 09:00:00", 2, "late")])
    assert_ok(lake.sync())
    assert bronze(lake, "t") == [{"id": 1, "v": "new"}, {"id": 3, "v": "v3"}]


def test_the_io_manager_writes_an_arrow_table(tmp_path):
    import dagster as dg

    from lake_assets.resources.io_manager import DeltaIOManager

    @dg.asset(key=["gold", SRC, "numbers"])
    def numbers() -> pa.Table:
        return pa.table({"n": pa.array([1, 2, 3], pa.int64())})

    io = DeltaIOManager(root=str(tmp_path), spark=LocalSparkResource())
    assert dg.materialize([numbers], resources={"io_manager": io}).success
    assert read_delta(tmp_path / "gold" / SRC / "numbers", "SELECT n FROM t ORDER BY n") == [
        {"n": 1},
        {"n": 2},
        {"n": 3},
    ]


def test_an_engine_that_records_app_transactions_gets_them_around_bronzes_merge(
    lake, spark, monkeypatch
):
    """What the Databricks deployment does, on the embedded engine: the confs are set for
    bronze's MERGE only and unset after; Sail ignores them, so the watermark comes second."""
    monkeypatch.setattr(LocalSparkResource, "embedded", lambda self: False)
    monkeypatch.setattr(LocalSparkResource, "records_app_transactions", lambda self: True)
    confs = []
    original_sql = ConnectSession.sql

    def sql(self, query, *a, **k):
        if query.lstrip().upper().startswith("MERGE"):
            confs.append(self.conf.get(cdc.TXN_VERSION_CONF, None))
        return original_sql(self, query, *a, **k)

    monkeypatch.setattr(ConnectSession, "sql", sql)
    _two_syncs(lake)
    assert_ok(lake.sync())
    raw_version = lake.version("raw", SRC, "t")
    assert confs[-2:] == [None, str(raw_version)]  # tombstones' MERGE without, bronze's with
    assert spark.conf.get(cdc.TXN_VERSION_CONF, None) is None
    assert cdc.watermark(_bronze_path(lake)) == raw_version
