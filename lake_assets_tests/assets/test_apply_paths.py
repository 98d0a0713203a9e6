"""Two ways to the batch a bronze run applies must give the same rows.

With the embedded engine on a local lake, arrow computes the batch (newest change per key,
newer than the key's tombstone) from raw's files and delta-rs MERGEs it; everywhere else the
engine's window and join do it and the engine MERGEs. These tests hold the arrow batch to the
engine's, and check that a raw table arrow must not read alone goes the engine's way.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as ST

from lake_assets.lib import cdc, delta

from ._lake import catalog, load, r
from ._lake import cdc as land_cdc

UTC = dt.timezone.utc
RAW = ST.StructType(
    [
        ST.StructField("a", ST.LongType()),
        ST.StructField("b", ST.StringType()),
        ST.StructField("amount", ST.DecimalType(10, 2)),
        ST.StructField("_op", ST.StringType()),
        ST.StructField("_commit_ts", ST.TimestampType()),
        ST.StructField("_source_file", ST.StringType()),
        ST.StructField("_file_pos", ST.LongType()),
        ST.StructField("_seq", ST.StringType()),
        ST.StructField("_file_date", ST.DateType()),
    ]
)
TOMB = ST.StructType(
    [
        ST.StructField("a", ST.LongType()),
        ST.StructField("b", ST.StringType()),
        ST.StructField("_seq", ST.StringType()),
    ]
)


def change(a, b, op, seq, day, amount=None):
    return (
        a,
        b,
        Decimal(amount) if amount else None,
        op,
        dt.datetime(2024, 1, day, tzinfo=UTC),
        f"f{seq[:2]}",
        int(seq[2:]),
        seq,
        dt.date(2024, 1, day),
    )


# (a, b) keys, one with a null part; several changes a key, out of order across days.
CHANGES = [
    change(1, "x", "I", "01001", 1, "1.00"),
    change(1, "x", "U", "02003", 2, "1.50"),
    change(1, "x", "U", "02002", 2, "9.99"),
    change(2, None, "I", "01002", 1, "2.00"),
    change(2, None, "U", "03001", 3, "2.25"),
    change(3, "y", "I", "01003", 1, "3.00"),
    change(3, "y", "D", "02001", 2),
    change(4, "z", "U", "03002", 3, "4.40"),  # older than its tombstone: dropped
    change(5, "z", "I", "03003", 3, "5.50"),  # newer than its tombstone: kept (a re-insert)
    change(None, "n", "I", "02004", 2, "0.10"),
    change(None, "n", "U", "03004", 3, "0.20"),
]
# (3, y)'s is its own delete, as a run leaves it that committed its tombstones and was killed
# before its bronze commit: the delete stays in the batch, to be applied to bronze.
TOMBSTONES = [(4, "z", "09000"), (5, "z", "00500"), (3, "y", "02001")]


@pytest.fixture
def tables(tmp_path, spark):
    raw, tomb, bronze = (str(tmp_path / n) for n in ("raw", "tomb", "bronze"))
    spark.createDataFrame(CHANGES, RAW).write.format("delta").partitionBy("_file_date").save(raw)
    spark.createDataFrame(TOMBSTONES, TOMB).write.format("delta").save(tomb)
    bronze_schema = ST.StructType([f for f in RAW.fields if f.name not in cdc.RAW_ONLY])
    spark.createDataFrame([], bronze_schema).write.format("delta").save(bronze)
    return raw, tomb, bronze


def _rows(rows) -> list[tuple]:
    """Sorted, with every timestamp as an aware UTC datetime (the engine gives naive UTC)."""

    def norm(v):
        if isinstance(v, dt.datetime):
            return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        return v

    return sorted((tuple(norm(v) for v in row) for row in rows), key=repr)


def engine_batch(spark, batch: cdc.ChangeBatch, tomb: str, keys) -> list[tuple]:
    """The engine's batch: the window and join of apply_changes' engine path."""
    fresh = cdc.fresh_changes(spark, batch.frame(spark), tomb, keys)
    return _rows(tuple(row) for row in fresh.collect())


def arrow_batch(batch, tomb, bronze, keys, out) -> tuple[tuple[int, int] | None, list[tuple]]:
    staged = cdc._stage_fresh(batch, tomb, str(out), keys, bronze)
    if not out.exists():
        return staged, []
    rows = pq.read_table(out).to_pylist()
    return staged, _rows(tuple(r.values()) for r in rows)


@pytest.mark.parametrize("days", [None, ("2024-01-02", "2024-01-03"), ("2024-01-01",), ()])
def test_the_arrow_batch_is_the_engines(spark, tables, tmp_path, days):
    raw, tomb, bronze = tables
    batch = cdc.ChangeBatch(raw, delta.version(raw), "_file_date", days)
    keys = ("a", "b")
    expected = engine_batch(spark, batch, tomb, keys)
    staged, got = arrow_batch(batch, tomb, bronze, keys, tmp_path / "batch")
    n_changes = batch.frame(spark).count()
    assert staged == (n_changes, len(expected))
    assert got == expected
    if days is None:
        # The null-keyed pair is one key; 4 is older than its tombstone; 5 newer than its own;
        # 3's delete is its tombstone.
        assert len(expected) == 5 and [x[:2] for x in expected if x[0] == 4] == []
        assert [x[3] for x in expected if x[0] == 3] == ["D"]


def test_a_column_added_later_is_null_in_older_files(spark, tables, tmp_path):
    raw, tomb, bronze = tables
    with_note = ST.StructType([*RAW.fields, ST.StructField("note", ST.StringType())])
    newer = spark.createDataFrame([(*change(6, "w", "I", "04001", 4, "6.00"), "new")], with_note)
    newer.write.format("delta").mode("append").option("mergeSchema", "true").save(raw)
    delta.add_columns(spark, bronze, [ST.StructField("note", ST.StringType())])
    batch = cdc.ChangeBatch(raw, delta.version(raw), "_file_date", None)
    expected = engine_batch(spark, batch, tomb, ("a", "b"))
    _, got = arrow_batch(batch, tomb, bronze, ("a", "b"), tmp_path / "batch")
    assert got == expected
    assert {x[-1] for x in got} == {None, "new"}


def test_a_change_held_twice_goes_the_engines_way_and_bronze_keeps_one_row(
    lake, spark, monkeypatch
):
    lake.write_catalog(catalog("t"))
    load(lake, "t", 1, [r("I", "2024-01-01 00:00:00", i, f"v{i}") for i in (1, 2)])
    assert lake.sync().ok
    land_cdc(lake, "t", "2024-01-02 10:00:00", [r("U", "2024-01-02 10:00:00", 1, "new")])
    # A file new to bronze lands in raw with its change twice (what the raw check exists to
    # catch): its day is written again with the new file's change doubled, as a broken writer
    # would. (The changes of a file bronze applied before are not its batch again.)
    raw = str(lake.path("raw", "s", "t"))
    assert lake.sync().ok
    day = delta.read(spark, raw).where("_file_date = DATE'2024-01-02'")
    again = (
        day.withColumn("_source_file", F.lit("20240102-110000000.parquet"))
        .withColumn("_seq", F.concat("_seq", F.lit("~")))
        .withColumn("v", F.lit("twice"))
    )
    day.unionByName(again).unionByName(again).write.format("delta").mode("overwrite").option(
        "replaceWhere", "_file_date = DATE'2024-01-02'"
    ).save(raw)
    calls = []
    original = cdc._stage_fresh
    monkeypatch.setattr(
        cdc, "_stage_fresh", lambda *a, **k: calls.append(original(*a, **k)) or calls[-1]
    )
    result = lake.sync()
    assert result.ok, result.failures
    assert calls == [None]  # arrow declined; the engine's window kept one copy
    assert [(x["id"], x["v"]) for x in lake.rows("bronze", "s", "t", "id")] == [
        (1, "twice"),
        (2, "v2"),
    ]
