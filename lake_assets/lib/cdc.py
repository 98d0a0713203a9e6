"""Apply a batch of changes to a table's current state (bronze), incrementally and in order.

The state is kept in two Delta tables: the current rows (bronze itself, each with the `_seq`
of the change that wrote it) and tombstones (the key and `_seq` of every key whose latest
change is a delete). A change is applied only when it is newer than both, so a late file can
neither resurrect a deleted key nor overwrite a newer row, and re-applying a batch is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as ST

from lake_assets.lib import delta
from lake_assets.lib.delta import quote

# Columns of raw that bronze does not keep (bronze keeps the source's columns plus these).
BRONZE_META = ("_commit_ts", "_seq")
RAW_ONLY = ("_op", "_source_file", "_file_pos", "_file_date")


@dataclass(frozen=True)
class ApplyStats:
    changes: int  # changes in the batch
    applied: int  # latest-per-key changes newer than what the lake holds


def latest_per_key(changes: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """The newest change of each key in a batch (by `_seq`)."""
    from pyspark.sql.window import Window

    w = Window.partitionBy(*keys).orderBy(F.col("_seq").desc())
    return changes.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def _bronze_schema(changes: ST.StructType) -> ST.StructType:
    return ST.StructType([f for f in changes.fields if f.name not in RAW_ONLY])


def _tomb_schema(changes: ST.StructType, keys: tuple[str, ...]) -> ST.StructType:
    by = {f.name: f for f in changes.fields}
    return ST.StructType([by[k] for k in keys] + [ST.StructField("_seq", ST.StringType(), True)])


def ensure_tables(
    spark: SparkSession, bronze: str, tombstones: str, changes: ST.StructType, keys: tuple[str, ...], name: str
) -> None:
    """Create bronze and its tombstones if absent; add new source columns to bronze."""
    if not delta.exists(bronze):
        spark.createDataFrame([], _bronze_schema(changes)).write.format("delta").mode("overwrite").save(bronze)
    else:
        added = delta.check_compatible(delta.schema_of(spark, bronze), _bronze_schema(changes), name)
        delta.add_columns(spark, bronze, added)
    if not delta.exists(tombstones):
        spark.createDataFrame([], _tomb_schema(changes, keys)).write.format("delta").mode("overwrite").save(tombstones)


def apply_changes(
    spark: SparkSession,
    changes: DataFrame,
    *,
    bronze: str,
    tombstones: str,
    batch_path: str,
    keys: tuple[str, ...],
    name: str,
) -> ApplyStats:
    """MERGE a batch of raw changes into bronze (and its tombstones)."""
    ensure_tables(spark, bronze, tombstones, changes.schema, keys, name)
    bronze_schema = delta.schema_of(spark, bronze)
    n_changes = changes.count()
    if n_changes == 0:
        return ApplyStats(0, 0)
    on = " AND ".join(f"s.{quote(k)} = t.{quote(k)}" for k in keys)
    latest = latest_per_key(changes, keys).alias("s")
    tomb = delta.read(spark, tombstones).alias("t")
    fresh = latest.join(tomb, on=[latest[k] == tomb[k] for k in keys], how="left").where(
        "t._seq IS NULL OR s._seq > t._seq"
    ).select("s.*")
    # Materialize the deduplicated batch once: both MERGEs read it, and a MERGE fed from a
    # window-function plan recomputes it per pass (measured: ~2.6x slower at 5M rows).
    fresh = delta.conform_to(fresh, bronze_schema)
    fresh.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(batch_path)
    batch = delta.read(spark, batch_path)
    applied = batch.count()
    if applied == 0:
        return ApplyStats(n_changes, 0)
    view = f"_lake_batch_{abs(hash((bronze, batch_path))) % 10**9}"
    batch.createOrReplaceTempView(view)
    cols = [f.name for f in bronze_schema.fields if f.name in batch.columns]
    set_clause = ", ".join(f"t.{quote(c)} = s.{quote(c)}" for c in cols)
    # Columns bronze has that this batch lacks (a column dropped at the source) become null.
    missing = [f.name for f in bronze_schema.fields if f.name not in batch.columns]
    if missing:
        set_clause += ", " + ", ".join(f"t.{quote(c)} = NULL" for c in missing)
    ins_cols = ", ".join(quote(c) for c in cols)
    ins_vals = ", ".join(f"s.{quote(c)}" for c in cols)
    spark.sql(
        f"""MERGE INTO delta.`{bronze}` t USING {view} s ON {on}
        WHEN MATCHED AND s._seq > t._seq AND s._op = 'D' THEN DELETE
        WHEN MATCHED AND s._seq > t._seq THEN UPDATE SET {set_clause}
        WHEN NOT MATCHED AND s._op <> 'D' THEN INSERT ({ins_cols}) VALUES ({ins_vals})"""
    ).collect()
    key_cols = ", ".join(quote(k) for k in keys)
    key_vals = ", ".join(f"s.{quote(k)}" for k in keys)
    spark.sql(
        f"""MERGE INTO delta.`{tombstones}` t USING {view} s ON {on}
        WHEN MATCHED AND s._op = 'D' THEN UPDATE SET t._seq = s._seq
        WHEN MATCHED THEN DELETE
        WHEN NOT MATCHED AND s._op = 'D' THEN INSERT ({key_cols}, _seq) VALUES ({key_vals}, s._seq)"""
    ).collect()
    spark.catalog.dropTempView(view)
    return ApplyStats(n_changes, applied)
