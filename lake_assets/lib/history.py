"""A table's history (SCD type 2): every version of every row, folded from raw's changes.

A run recomputes the whole history of the keys its batch touches, from all of raw's changes of
those keys, rather than patching versions: a late change then lands where it belongs in the
order (`_seq`) with no special case, and running a batch twice gives the same rows. The new
versions replace those keys' rows in one MERGE (one commit), so a failed run leaves the
history as it was; the raw version consumed is an application transaction of the table's own
log, as bronze's is (lib/cdc.py).

The fold, per key in `_seq` order:
- a truncate is a delete of every key, at its place in the order;
- commit times are made non-decreasing along the order (a full load may carry a commit time
  later than the CDC after it), so that versions never overlap;
- of the changes at one commit time only the last counts;
- a delete closes the open version; a change equal to the open version on every tracked column
  (all but keys, `_` columns and `except` columns) opens none and updates it in place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as ST
from pyspark.sql.window import Window

from lake_assets.lib import delta, history_arrow, storage
from lake_assets.lib.cdc import ChangeBatch, merges_in_process
from lake_assets.lib.changes import META_COLUMNS
from lake_assets.lib.delta import quote

WATERMARK_APP_ID = "lake_assets.history.raw_version"
VERSION_FIELDS = (
    ST.StructField("_valid_from", ST.TimestampType(), True),
    ST.StructField("_valid_to", ST.TimestampType(), True),
    ST.StructField("_is_current", ST.BooleanType(), True),
)
# Never a key's value: the MERGE matches a version by its start, which is null for a version a
# full load without commit times made.
_NO_START = "TIMESTAMP'0001-01-01 00:00:00'"
_DROP = "_lake_drop"


@dataclass(frozen=True)
class Spec:
    keys: tuple[str, ...]
    untracked: tuple[str, ...] = ()  # the catalog's `except`


@dataclass(frozen=True)
class HistoryStats:
    keys: int  # keys whose history the run recomputed
    versions: int  # their versions now


def watermark(path: str) -> int | None:
    """The raw version whose changes the history holds (None when not recorded)."""
    return delta.transaction_version(path, WATERMARK_APP_ID)


def source_columns(raw: ST.StructType) -> list[str]:
    return [f.name for f in raw.fields if f.name not in META_COLUMNS]


def history_schema(raw: ST.StructType) -> ST.StructType:
    by = {f.name: f for f in raw.fields}
    return ST.StructType([by[c] for c in source_columns(raw)] + list(VERSION_FIELDS))


def _tracked(columns: list[str], spec: Spec) -> list[str]:
    skip = set(spec.keys) | set(spec.untracked)
    return [c for c in columns if c not in skip and not c.startswith("_")]


# -- the fold ---------------------------------------------------------------------------------


def _events(changes: DataFrame, columns: list[str], keys: tuple[str, ...]) -> DataFrame:
    """The keys' changes, each truncate turned into a delete of every key of `changes`."""
    rows = changes.where("_op <> 'T'").select(
        *[quote(c) for c in columns], "_op", "_seq", "_commit_ts"
    )
    truncates = changes.where("_op = 'T'").select("_seq", "_commit_ts")
    types = {f.name: f.dataType for f in rows.schema.fields}
    deletes = (
        rows.select(*[quote(k) for k in keys])
        .distinct()
        .crossJoin(truncates)
        .select(
            *[
                F.col(quote(c)) if c in keys else F.lit(None).cast(types[c]).alias(c)
                for c in columns
            ],
            F.lit("D").alias("_op"),
            "_seq",
            "_commit_ts",
        )
    )
    return rows.unionByName(deletes)


def _one_per_time(events: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """The last change of each key at each (non-decreasing) commit time `_at`."""
    order = Window.partitionBy(*keys).orderBy("_seq")
    so_far = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    events = events.withColumn("_at", F.max("_commit_ts").over(so_far))
    later = events.withColumn("_next_seq", F.lead("_seq").over(order)).withColumn(
        "_next_at", F.lead("_at").over(order)
    )
    last = F.col("_next_seq").isNull() | ~F.col("_next_at").eqNullSafe(F.col("_at"))
    return later.where(last).drop("_next_seq", "_next_at")


def _same(tracked: list[str], order: Window) -> Column:
    same = F.lit(True)
    for c in tracked:
        same = same & F.col(quote(c)).eqNullSafe(F.lag(quote(c)).over(order))
    return same


def _segments(events: DataFrame, keys: tuple[str, ...], tracked: list[str]) -> DataFrame:
    """`_seg`: which run of changes each belongs to. A run starts at a delete, or at a change
    that opens a version (the first, one after a delete, or one differing on a tracked column)."""
    order = Window.partitionBy(*keys).orderBy("_seq")
    prev_op = F.lag("_op").over(order)
    starts = (F.col("_op") == "D") | prev_op.isNull() | (prev_op == "D") | ~_same(tracked, order)
    so_far = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return events.withColumn("_starts", starts.cast("int")).withColumn(
        "_seg", F.sum("_starts").over(so_far)
    )


def _versions_of(events: DataFrame, keys: tuple[str, ...], columns: list[str]) -> DataFrame:
    """One row per run that is not a delete: the values of its newest change, valid from its
    first change's time to the start of the next run."""
    runs = events.groupBy(*keys, "_seg").agg(
        F.max("_seq").alias("_last"),
        F.min("_at").alias("_min_at"),
        F.count(F.lit(1)).alias("_n"),
        F.count("_at").alias("_n_at"),
    )
    # `_at` never decreases, so a run with a null time starts with it: its version has no start.
    runs = runs.withColumn("_valid_from", F.when(F.col("_n") == F.col("_n_at"), F.col("_min_at")))
    runs = runs.withColumn(
        "_valid_to", F.lead("_valid_from").over(Window.partitionBy(*keys).orderBy("_seg"))
    )
    e, r = events.alias("e"), runs.alias("r")
    on = [F.col(f"e.{quote(k)}") == F.col(f"r.{quote(k)}") for k in keys]
    joined = e.join(r, on=on + [F.col("e._seq") == F.col("r._last")])
    return joined.where("e._op <> 'D'").select(
        *[F.col(f"e.{quote(c)}").alias(c) for c in columns],
        "r._valid_from",
        "r._valid_to",
        F.col("r._valid_to").isNull().alias("_is_current"),
    )


def versions(changes: DataFrame, spec: Spec) -> DataFrame:
    """Every version of every key of `changes` (raw's rows: all changes of those keys, and the
    truncates), as the history table holds them."""
    columns = source_columns(changes.schema)
    events = _one_per_time(_events(changes, columns, spec.keys), spec.keys)
    events = _segments(events, spec.keys, _tracked(columns, spec))
    return _versions_of(events, spec.keys, columns)


# -- applied incrementally --------------------------------------------------------------------


def _has_truncate(changes: DataFrame) -> bool:
    return changes.where("_op = 'T'").limit(1).count() > 0


def _touched_keys(changes: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    return changes.where("_op <> 'T'").select(*[quote(k) for k in keys]).distinct()


def _scope(spark: SparkSession, batch: ChangeBatch, keys: tuple[str, ...]) -> DataFrame:
    """All of raw's changes of the keys the batch touches, and raw's truncates. A truncate in
    the batch touches every key."""
    raw = delta.read(spark, batch.raw_path, version=batch.raw_version)
    changes = batch.frame(spark)
    if batch.days is None or _has_truncate(changes):
        return raw
    touched = _touched_keys(changes, keys)
    return raw.join(touched, on=list(keys), how="left_semi").unionByName(raw.where("_op = 'T'"))


def ensure_table(spark: SparkSession, path: str, raw: ST.StructType, name: str) -> None:
    """Create the history table if absent; add the source's new columns to it."""
    schema = history_schema(raw)
    if not delta.exists(path):
        delta.create_empty(spark, schema, path)
        return
    delta.add_columns(
        spark, path, delta.check_compatible(delta.schema_of(spark, path), schema, name)
    )


def _merge_source(
    spark: SparkSession, new: DataFrame, path: str, touched: DataFrame, keys: tuple[str, ...]
) -> DataFrame:
    """The new versions, and the held versions of the touched keys that are no longer versions
    (to delete: `_lake_drop`): a key may have fewer versions than before, or none."""
    held = delta.read(spark, path).join(touched, on=list(keys), how="left_semi")
    start = [*keys, "_valid_from"]
    gone = held.join(
        new.select(*[quote(c) for c in start]),
        on=[held[quote(k)] == new[quote(k)] for k in keys]
        + [held["_valid_from"].eqNullSafe(new["_valid_from"])],
        how="left_anti",
    )
    return new.withColumn(_DROP, F.lit(False)).unionByName(gone.withColumn(_DROP, F.lit(True)))


def _merge_sql(path: str, view: str, keys: tuple[str, ...], columns: list[str]) -> str:
    on = " AND ".join(
        [f"t.{quote(k)} = s.{quote(k)}" for k in keys]
        + [f"coalesce(t._valid_from, {_NO_START}) = coalesce(s._valid_from, {_NO_START})"]
    )
    sets = ", ".join(f"t.{quote(c)} = s.{quote(c)}" for c in columns)
    cols = ", ".join(quote(c) for c in columns)
    vals = ", ".join(f"s.{quote(c)}" for c in columns)
    return f"""MERGE INTO delta.`{storage.engine_path(path)}` t USING {view} s ON {on}
        WHEN MATCHED AND s.{_DROP} THEN DELETE
        WHEN MATCHED THEN UPDATE SET {sets}
        WHEN NOT MATCHED AND NOT s.{_DROP} THEN INSERT ({cols}) VALUES ({vals})"""


def apply_history(
    spark: SparkSession,
    batch: ChangeBatch,
    *,
    path: str,
    batch_path: str,
    spec: Spec,
    name: str,
    embedded: bool = False,
) -> HistoryStats:
    """Recompute the history of the keys the batch touches, in one commit; then record
    `batch.raw_version` as the history's watermark. With the embedded engine on a local lake
    (`merges_in_process`, as for bronze) arrow reads and folds the changes and delta-rs MERGEs
    the versions, recording the watermark in the MERGE's own commit; elsewhere the engine
    does, and the watermark is a commit of no rows after the MERGE's (the engine cannot carry
    it; the MERGE is idempotent, so a run killed between the two does it again)."""
    stats = None
    if batch.days != () and merges_in_process(embedded, path):
        stats = _apply_in_process(spark, batch, path, spec, name)
    if stats is None and batch.days != ():
        scope = _scope(spark, batch, spec.keys)
        ensure_table(spark, path, scope.schema, name)
        stats = _replace_versions(spark, scope, path, batch_path, spec)
    stats = stats or HistoryStats(0, 0)
    if batch.days == () and not delta.exists(path):
        ensure_table(spark, path, delta.schema_of(spark, batch.raw_path), name)
    if watermark(path) != batch.raw_version:
        delta.record_transaction(path, WATERMARK_APP_ID, batch.raw_version)
    return stats


def _folded(spark: SparkSession, scope: DataFrame, spec: Spec, staging: str) -> DataFrame:
    """`versions(scope, spec)`, folded in this process (lib/history_arrow.py: the engine's
    window plan was most of a run's time, bench/cdc_apply.py --history) and staged as parquet
    under `staging`; by the engine where arrow cannot compare a tracked column's type."""
    try:
        folded = history_arrow.versions(scope.toArrow(), spec.keys, spec.untracked)
    except history_arrow.NotComparable:
        return versions(scope, spec)
    fs, base = storage.filesystem(staging)
    storage.remove_tree(staging)
    fs.create_dir(base, recursive=True)
    pq.write_table(folded, f"{base}/versions.parquet", filesystem=fs, compression="none")
    return spark.read.parquet(storage.engine_path(staging))


def _replace_versions(
    spark: SparkSession, scope: DataFrame, path: str, batch_path: str, spec: Spec
) -> HistoryStats:
    staging = f"{batch_path}_versions"
    try:
        return _replace_with(
            spark, _folded(spark, scope, spec, staging), scope, path, batch_path, spec
        )
    finally:
        storage.remove_tree(staging)


def _replace_with(
    spark: SparkSession, folded: DataFrame, scope: DataFrame, path: str, batch_path: str, spec: Spec
) -> HistoryStats:
    table = delta.schema_of(spark, path)
    new = delta.conform_to(folded, table)
    touched = _touched_keys(scope, spec.keys)
    source = _merge_source(spark, new, path, touched, spec.keys)
    # Materialized once: the MERGE reads its source more than once, and each read of a window
    # plan would compute the fold again.
    source.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
        storage.engine_path(batch_path)
    )
    staged = delta.read(spark, batch_path)
    n_keys = touched.count()
    n_versions = staged.where(f"NOT {_DROP}").count()
    if n_versions == 0 and staged.limit(1).count() == 0:
        return HistoryStats(n_keys, 0)  # nothing to write: no commit
    view = f"_lake_history_{abs(hash((path, batch_path))) % 10**9}"
    staged.createOrReplaceTempView(view)
    try:
        spark.sql(_merge_sql(path, view, spec.keys, [f.name for f in table.fields])).collect()
    finally:
        spark.catalog.dropTempView(view)
    return HistoryStats(n_keys, n_versions)


# -- the embedded engine on a local lake: arrow reads and folds, delta-rs MERGEs ---------------
# The engine's MERGE of the versions (Sail plans it as full outer joins of the whole history
# with the source) and its read of the touched keys' changes were most of a run's time
# (bench/cdc_apply.py --history). As bronze does (lib/cdc.py), on a local lake with the
# embedded engine arrow reads raw's files (listed by delta-rs at the batch's version), the fold
# is history_arrow's, and one delta-rs MERGE writes the versions with the watermark in its
# commit. Where raw's or the history's files alone are not the table (a reader feature), or a
# tracked column's type is one arrow cannot compare, the engine's path does it.

_FOLD_META = ("_op", "_seq", "_commit_ts")


def _batch_files(batch: ChangeBatch, files: dict[str, dict]) -> list[str]:
    if batch.days is None:
        return sorted(files)
    days = set(batch.days)
    return sorted(f for f, p in files.items() if str(p.get(batch.partition_column))[:10] in days)


def _batch_touches(
    batch: ChangeBatch, schema: pa.Schema, files: dict[str, dict], keys: tuple[str, ...]
) -> pa.Table | None:
    """The distinct keys the batch's changes touch; None when the batch holds a truncate (it
    touches every key) or is all of raw."""
    if batch.days is None:
        return None
    cols = [*keys, "_op"]
    read = pa.schema([schema.field(c) for c in cols])
    parts = []
    for f in _batch_files(batch, files):
        t = pads.dataset(f, schema=read, format="parquet").to_table()
        if batch.applied:
            names = pq.read_table(f, columns=["_source_file"]).column(0)
            t = t.filter(pc.invert(pc.fill_null(pc.is_in(names, pa.array(batch.applied)), False)))
        parts.append(t)
    if not parts:
        return pa.schema([schema.field(k) for k in keys]).empty_table()
    changes = pa.concat_tables(parts)
    is_t = pc.equal(changes.column("_op"), "T")
    if pc.any(is_t).as_py():
        return None
    return changes.select(list(keys)).group_by(list(keys)).aggregate([])


def _distinct_keys(changes: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    rows = changes.filter(pc.invert(pc.equal(changes.column("_op"), "T")))
    return rows.select(list(keys)).group_by(list(keys)).aggregate([])


def _read_scope(
    batch: ChangeBatch, schema: pa.Schema, files: dict[str, dict], keys: tuple[str, ...]
) -> pa.Table:
    """As _scope: all of raw's changes of the keys the batch touches, and raw's truncates."""
    touched = _batch_touches(batch, schema, files, keys)
    cols = [f.name for f in schema if f.name not in META_COLUMNS] + list(_FOLD_META)
    read = pa.schema([schema.field(c) for c in cols])
    raw = pads.dataset(sorted(files), schema=read, format="parquet")
    if touched is None:
        return raw.to_table()
    if touched.num_rows == 0:
        return read.empty_table()
    truncates = raw.to_table(filter=pc.field("_op") == "T")
    rows = raw.to_table(filter=pc.field("_op") != "T")
    touched = touched.cast(pa.schema([read.field(k) for k in keys]))
    rows = rows.join(touched, list(keys), join_type="left semi")
    return pa.concat_tables([rows.select(cols), truncates.select(cols)])


def _conform(table: pa.Table, target: pa.Schema, drop: bool) -> pa.Table:
    """`table` in the history table's columns and types (nulls for those it lacks), and the
    `_lake_drop` flag."""
    n = table.num_rows
    cols = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
        for f in target
    ]
    cols.append(pa.array(np.full(n, drop)))
    return pa.Table.from_arrays(cols, schema=target.append(pa.field(_DROP, pa.bool_())))


def _with_start(table: pa.Table) -> pa.Table:
    """`table` and `_lake_from`: `_valid_from` with a null start as _NO_START, so that it joins."""
    start = table.column("_valid_from").cast(history_arrow.TS)
    none = pa.scalar(dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc), history_arrow.TS)
    return table.append_column("_lake_from", pc.fill_null(start, none))


def _gone(path: str, new: pa.Table, touched: pa.Table, keys: tuple[str, ...]) -> pa.Table | None:
    """The held versions of the touched keys that are versions no longer (keys, `_valid_from`)."""
    hist_schema, hist_files = delta.local_data_files(path)
    if not hist_files or touched.num_rows == 0:
        return None
    cols = [*keys, "_valid_from"]
    held = pads.dataset(
        sorted(hist_files), schema=pa.schema([hist_schema.field(c) for c in cols]), format="parquet"
    ).to_table()
    touched = touched.cast(pa.schema([held.schema.field(k) for k in keys]))
    held = _with_start(held.join(touched, list(keys), join_type="left semi"))
    now = _with_start(new.select(cols)).drop_columns(["_valid_from"])
    gone = held.join(now, [*keys, "_lake_from"], join_type="left anti")
    return gone.drop_columns(["_lake_from"])


def _apply_in_process(
    spark: SparkSession, batch: ChangeBatch, path: str, spec: Spec, name: str
) -> HistoryStats | None:
    """Recompute the touched keys' history by arrow and one delta-rs MERGE whose commit also
    records the watermark; None (nothing written) where this path cannot take the batch."""
    listed = delta.local_data_files(batch.raw_path, batch.raw_version)
    if listed is None:
        return None
    if delta.exists(path) and delta.local_data_files(path) is None:
        return None
    schema, files = listed
    scope = _read_scope(batch, schema, files, spec.keys)
    try:
        folded = history_arrow.versions(scope, spec.keys, spec.untracked)
    except history_arrow.NotComparable:
        return None
    ensure_table(spark, path, delta.schema_of(spark, batch.raw_path), name)
    touched = _distinct_keys(scope, spec.keys)
    del scope
    target = delta.arrow_schema(path)
    new = _conform(folded, target, drop=False)
    del folded
    gone = _gone(path, new, touched, spec.keys)
    source = new if gone is None else pa.concat_tables([new, _conform(gone, target, drop=True)])
    stats = HistoryStats(touched.num_rows, new.num_rows)
    if source.num_rows == 0:
        return stats  # nothing to write: no commit
    columns = [quote(f.name) for f in target]
    on = " AND ".join(
        [f"t.{quote(k)} = s.{quote(k)}" for k in spec.keys]
        + ["t._valid_from IS NOT DISTINCT FROM s._valid_from"]
    )
    (
        delta.delta_table(path)
        .merge(
            source,
            predicate=on,
            source_alias="s",
            target_alias="t",
            commit_properties=delta.with_transaction(WATERMARK_APP_ID, batch.raw_version),
        )
        .when_matched_delete(predicate=f"s.{_DROP}")
        .when_matched_update({c: f"s.{c}" for c in columns})
        .when_not_matched_insert({c: f"s.{c}" for c in columns}, predicate=f"NOT s.{_DROP}")
        .execute()
    )
    pa.default_memory_pool().release_unused()
    return stats
