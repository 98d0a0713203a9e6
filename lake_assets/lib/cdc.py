"""Apply a batch of changes to a table's current state (bronze), incrementally and in order.

The state is kept in two Delta tables: the current rows (bronze itself, each with the `_seq`
of the change that wrote it) and tombstones (the key and `_seq` of every key whose latest
change is a delete). A change is applied only when it is newer than both, so a late file can
neither resurrect a deleted key nor overwrite a newer row, and re-applying a batch is a no-op.
The raw version applied so far (the watermark) is an application transaction of bronze's own
commit: it moves exactly when the rows it describes do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as ST

from lake_assets.lib import delta, storage
from lake_assets.lib.delta import quote

# Columns of raw that bronze does not keep (it keeps the source's columns, `_commit_ts`, `_seq`).
RAW_ONLY = ("_op", "_source_file", "_file_pos", "_file_date", "_file_size", "_file_digest")


@dataclass(frozen=True)
class ChangeBatch:
    """What a bronze run applies: raw's changes at `raw_version` in the partitions `days` of
    `partition_column` (ISO dates; all of raw when None, none when empty), but for those of
    the landed files `applied` (`_source_file`: their changes are applied already)."""

    raw_path: str
    raw_version: int
    partition_column: str
    days: tuple[str, ...] | None = None
    applied: tuple[str, ...] = ()

    def frame(self, spark: SparkSession) -> DataFrame:
        raw = delta.read(spark, self.raw_path, version=self.raw_version)
        if self.days is None:
            return raw
        if not self.days:
            return raw.limit(0)
        days = ", ".join(f"DATE'{d}'" for d in self.days)
        raw = raw.where(f"{quote(self.partition_column)} IN ({days})")
        if self.applied:
            raw = raw.where(~F.col("_source_file").isin(list(self.applied)))
        return raw


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


def _split_columns(bronze_schema: ST.StructType, present: list[str]) -> tuple[list[str], list[str]]:
    """(bronze's columns the batch has, bronze's columns it lacks): a column dropped at the
    source is set to null by an update rather than keeping a value it no longer has."""
    have = set(present)
    return (
        [f.name for f in bronze_schema.fields if f.name in have],
        [f.name for f in bronze_schema.fields if f.name not in have],
    )


def ensure_tables(
    spark: SparkSession,
    bronze: str,
    tombstones: str,
    changes: ST.StructType,
    keys: tuple[str, ...],
    name: str,
) -> None:
    """Create bronze and its tombstones if absent; add new source columns to bronze."""
    if not delta.exists(bronze):
        delta.create_empty(spark, _bronze_schema(changes), bronze)
    else:
        # A type the source widened (int -> bigint, ...) widens bronze (and the keys' tombstones).
        wider = delta.widenings(delta.schema_of(spark, bronze), _bronze_schema(changes))
        delta.widen_columns(spark, bronze, wider)
        if delta.exists(tombstones):
            delta.widen_columns(spark, tombstones, [f for f in wider if f.name in keys])
        added = delta.check_compatible(
            delta.schema_of(spark, bronze), _bronze_schema(changes), name
        )
        delta.add_columns(spark, bronze, added)
    if not delta.exists(tombstones):
        delta.create_empty(spark, _tomb_schema(changes, keys), tombstones)


# The raw version a bronze table holds all changes of: an application transaction of the bronze
# commit that applied them, so the watermark and the rows it describes commit together.
WATERMARK_APP_ID = "lake_assets.bronze.raw_version"

# Delta's idempotent-write session confs: an engine that honours them (Delta on JVM Spark, for
# MERGE too) records them as an application transaction of its commit. Sail ignores them
# (conformance/test_app_transactions.py).
TXN_APP_ID_CONF = "spark.databricks.delta.write.txnAppId"
TXN_VERSION_CONF = "spark.databricks.delta.write.txnVersion"


def watermark(bronze: str) -> int | None:
    """The raw version whose changes `bronze` holds, from its own log (None when not recorded)."""
    return delta.transaction_version(bronze, WATERMARK_APP_ID)


def previous_watermark(bronze: str, looked: int = 64) -> int | None:
    """The watermark bronze held before its current one (the raw version its last batch
    started from), from its log; None when there is none within the last `looked` commits."""
    table = delta.delta_table(bronze)
    now, current = table.version(), table.transaction_version(WATERMARK_APP_ID)
    if current is None:
        return None
    for v in range(now - 1, max(-1, now - 1 - looked), -1):
        mark = delta.delta_table(bronze, v).transaction_version(WATERMARK_APP_ID)
        if mark != current:
            return mark
    return None


def legacy_watermark(path: str) -> int | None:
    """The raw version in the watermark table of a lake written before bronze's commits held it."""
    if not delta.exists(path):
        return None
    rows = delta.query(path, "SELECT raw_version FROM t")
    return int(rows[0][0]) if rows else None


def fresh_changes(
    spark: SparkSession,
    changes: DataFrame,
    tombstones: str,
    keys: tuple[str, ...],
    after: str | None = None,
) -> DataFrame:
    """The newest change of each key, where not older than the key's tombstone, nor than the
    table's last truncate (`after`, its `_seq`). A change equal to its tombstone is the delete
    that wrote it: kept, so that a run whose tombstones committed and whose bronze commit did
    not (a killed run) applies the delete to bronze when run again."""
    # Only what the MERGEs use travels through the window: not the raw-only bookkeeping.
    changes = changes.select(
        *[quote(c) for c in changes.columns if c not in RAW_ONLY or c == "_op"]
    )
    changes = changes.where("_op <> 'T'")
    if after is not None:
        changes = changes.where(F.col("_seq") > after)
    latest = latest_per_key(changes, keys).alias("s")
    tomb = delta.read(spark, tombstones).alias("t")
    return (
        latest.join(tomb, on=[latest[k] == tomb[k] for k in keys], how="left")
        .where("t._seq IS NULL OR s._seq >= t._seq")
        .select("s.*")
    )


class TruncateError(ValueError):
    """A batch holds a truncate where the caller keeps no record of truncates."""


def truncated_at(truncates: str | None) -> str | None:
    """The `_seq` of the last truncate applied to the table (None: never truncated)."""
    if truncates is None or not delta.exists(truncates):
        return None
    rows = delta.query(truncates, "SELECT max(_seq) FROM t")
    return rows[0][0] if rows else None


def _apply_truncate(
    spark: SparkSession, changes: DataFrame, bronze: str, truncates: str | None, name: str
) -> str | None:
    """Apply the batch's last truncate when it is newer than the last one applied: delete every
    row of bronze whose change comes before it. Returns the `_seq` of the table's last truncate
    (None: never truncated): only changes after it apply."""
    recorded = truncated_at(truncates)
    found = changes.where("_op = 'T'").select("_seq", "_commit_ts").orderBy(F.col("_seq").desc())
    last = found.limit(1).collect()
    if not last or (recorded is not None and last[0]["_seq"] <= recorded):
        return recorded
    if truncates is None:
        raise TruncateError(f"table {name}: a truncate ({last[0]['_seq']}) with no record of them")
    # Rows first, record last: a run killed between the two finds the truncate new again and
    # deletes nothing more; one killed after applies the changes after it when run again.
    cut = last[0]["_seq"]
    target = storage.engine_path(bronze)
    spark.sql(f"DELETE FROM delta.`{target}` WHERE _seq < {_literal(cut)}").collect()
    spark.createDataFrame(last, found.schema).write.format("delta").mode("append").save(
        storage.engine_path(truncates)
    )
    return cut


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def merges_in_process(embedded: bool, bronze: str) -> bool:
    """Whether arrow and delta-rs apply the batch in this process: the engine is embedded (it
    shares this process's files; `SparkResource.embedded`) and the lake is on a local disk."""
    return embedded and not storage.is_s3(bronze)


def apply_changes(
    spark: SparkSession,
    batch: ChangeBatch,
    *,
    bronze: str,
    tombstones: str,
    batch_path: str,
    keys: tuple[str, ...],
    name: str,
    embedded: bool,
    engine_txn: bool = False,
    truncates: str | None = None,
) -> ApplyStats:
    """Apply a batch of raw changes to bronze and its tombstones, tombstones first: bronze's
    commit, the last, records `batch.raw_version` as bronze's watermark. `engine_txn`: the
    engine records Delta's idempotent-write confs in its MERGE's commit. `truncates`: the table
    of the truncates applied (without it, a batch with a truncate is refused)."""
    changes = batch.frame(spark)
    ensure_tables(spark, bronze, tombstones, changes.schema, keys, name)
    bronze_schema = delta.schema_of(spark, bronze)
    cut = _apply_truncate(spark, changes, bronze, truncates, name)
    stats = None
    if merges_in_process(embedded, bronze) and cut is None:
        staged = _stage_fresh(batch, tombstones, batch_path, keys, bronze)
        if staged is not None:
            stats = _merge_in_process(
                staged, bronze, tombstones, batch_path, bronze_schema, keys, batch.raw_version
            )
    if stats is None:
        txn_version = batch.raw_version if engine_txn else None
        stats = _merge_by_engine(
            spark, changes, bronze, tombstones, batch_path, bronze_schema, keys, txn_version, cut
        )
    if watermark(bronze) != batch.raw_version:
        # No commit of bronze carried it: the batch changed no row, or the engine cannot record it
        # (then a second commit, after the MERGE's: see docs/engine.md, "Watermarks").
        delta.record_transaction(bronze, WATERMARK_APP_ID, batch.raw_version)
    return stats


def _tombstones_then_bronze(tombstones: str, merge_tombstones, merge_bronze) -> None:
    """Run both MERGEs, bronze's last; when bronze's fails, the tombstones go back to their rows
    before (a commit of their own, unless another writer committed after this run's). A run
    killed between the two leaves the tombstones ahead, which fresh_changes tolerates."""
    before = delta.version(tombstones)
    merge_tombstones()
    after = delta.version(tombstones)
    try:
        merge_bronze()
    except Exception:
        if after != before:
            _undo(tombstones, before, after)
        raise


def _undo(tombstones: str, before: int, ours: int) -> None:
    from deltalake.exceptions import CommitFailedError

    if delta.version(tombstones) != ours:
        return  # another writer committed since: its tombstones are not this run's to undo
    try:
        delta.restore(tombstones, before)
    except CommitFailedError:
        pass  # it committed meanwhile: the tombstones stay ahead, which fresh_changes tolerates


def _merge_by_engine(
    spark: SparkSession,
    changes: DataFrame,
    bronze: str,
    tombstones: str,
    batch_path: str,
    bronze_schema: ST.StructType,
    keys: tuple[str, ...],
    txn_version: int | None,
    cut: str | None = None,
) -> ApplyStats:
    """The engine's window, join and SQL MERGEs (every engine; the SQL every Delta engine reads)."""
    n_changes = changes.count()
    if n_changes == 0:
        return ApplyStats(0, 0)
    fresh = delta.conform_to(fresh_changes(spark, changes, tombstones, keys, cut), bronze_schema)
    # Materialize the deduplicated batch once: both MERGEs read it, and a MERGE fed from a
    # window-function plan recomputes it per pass (measured: ~2.6x slower at 5M rows).
    fresh.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
        storage.engine_path(batch_path)
    )
    staged = delta.read(spark, batch_path)
    applied = staged.count()
    if applied == 0:
        return ApplyStats(n_changes, 0)
    view = f"_lake_batch_{abs(hash((bronze, batch_path))) % 10**9}"
    staged.createOrReplaceTempView(view)
    on = " AND ".join(f"s.{quote(k)} = t.{quote(k)}" for k in keys)
    key_cols = ", ".join(quote(k) for k in keys)
    key_vals = ", ".join(f"s.{quote(k)}" for k in keys)
    tomb_sql = f"""MERGE INTO delta.`{storage.engine_path(tombstones)}` t USING {view} s ON {on}
        WHEN MATCHED AND s._op = 'D' AND s._seq > t._seq THEN UPDATE SET t._seq = s._seq
        WHEN MATCHED AND s._op <> 'D' THEN DELETE
        WHEN NOT MATCHED AND s._op = 'D'
            THEN INSERT ({key_cols}, _seq) VALUES ({key_vals}, s._seq)"""
    bronze_sql = _bronze_merge_sql(bronze, view, on, bronze_schema, staged.columns)
    _tombstones_then_bronze(
        tombstones,
        lambda: spark.sql(tomb_sql).collect(),
        lambda: _with_txn_confs(spark, bronze, txn_version, bronze_sql),
    )
    spark.catalog.dropTempView(view)
    return ApplyStats(n_changes, applied)


def _bronze_merge_sql(
    bronze: str, view: str, on: str, bronze_schema: ST.StructType, present: list[str]
) -> str:
    cols, missing = _split_columns(bronze_schema, present)
    set_clause = ", ".join(f"t.{quote(c)} = s.{quote(c)}" for c in cols)
    if missing:
        set_clause += ", " + ", ".join(f"t.{quote(c)} = NULL" for c in missing)
    ins_cols = ", ".join(quote(c) for c in cols)
    ins_vals = ", ".join(f"s.{quote(c)}" for c in cols)
    return f"""MERGE INTO delta.`{storage.engine_path(bronze)}` t USING {view} s ON {on}
        WHEN MATCHED AND s._seq > t._seq AND s._op = 'D' THEN DELETE
        WHEN MATCHED AND s._seq > t._seq THEN UPDATE SET {set_clause}
        WHEN NOT MATCHED AND s._op <> 'D' THEN INSERT ({ins_cols}) VALUES ({ins_vals})"""


def _with_txn_confs(spark: SparkSession, bronze: str, txn_version: int | None, sql: str) -> None:
    """Run the MERGE, with the idempotent-write confs set when the engine records them. Such an
    engine skips a write whose version is not above the recorded one: not wanted after raw was
    rebuilt (its versions start again), so the confs are left out when bronze is ahead of it."""
    current = watermark(bronze)
    if txn_version is None or (current is not None and current >= txn_version):
        spark.sql(sql).collect()
        return
    spark.conf.set(TXN_APP_ID_CONF, WATERMARK_APP_ID)
    spark.conf.set(TXN_VERSION_CONF, str(txn_version))
    try:
        spark.sql(sql).collect()
    finally:
        spark.conf.unset(TXN_APP_ID_CONF)
        spark.conf.unset(TXN_VERSION_CONF)


# -- the embedded engine on a local lake: the batch by arrow, the MERGEs by delta-rs ----------
# Sail (0.7) plans a MERGE INTO as four full outer joins of the whole target with the source,
# each scanning every column of every file: measured 4 times the cost of one pass, whatever the
# batch. With the embedded engine on a local lake, arrow computes the deduplicated batch from
# raw's files (listed by delta-rs) into a parquet file, and delta-rs runs the same two MERGEs
# from it (same conditions, same order, one commit each, its own conflict check): one
# pass over bronze. A lake on S3 keeps the SQL MERGE (its commits there are the engine's), as
# do all other engines, and so does a batch arrow cannot take (see _stage_fresh).


def _run_starts(sorted_keys: pa.Table) -> np.ndarray:
    """For rows sorted by key: True where a row's key differs from the row before (nulls equal)."""
    n = sorted_keys.num_rows
    starts = np.ones(n, dtype=bool)
    if n > 1:
        differs = np.zeros(n - 1, dtype=bool)
        for column in sorted_keys.columns:
            a, b = column.slice(1), column.slice(0, n - 1)
            ne = pc.coalesce(pc.not_equal(a, b), pc.not_equal(pc.is_null(a), pc.is_null(b)))
            differs |= ne.to_numpy()
        starts[1:] = differs
    return starts


def _new_rows(path: str, applied: tuple[str, ...]) -> np.ndarray | None:
    """Which rows of a raw data file are not changes of the `applied` landed files (None: all)."""
    if not applied:
        return None
    names = pq.read_table(path, columns=["_source_file"], read_dictionary=["_source_file"])
    done = pa.array(applied, pa.string())
    out = []
    for chunk in names.column(0).chunks:
        # One lookup per distinct name (the column is dictionary-encoded), not one per row.
        old = pc.is_in(chunk.dictionary, value_set=done).to_numpy(zero_copy_only=False)
        idx = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
        out.append(np.where(idx >= 0, ~old[np.maximum(idx, 0)], True))
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def _stage_fresh(
    batch: ChangeBatch, tombstones: str, batch_path: str, keys: tuple[str, ...], bronze: str
) -> tuple[int, int] | None:
    """Write the batch's newest change per key, where newer than the key's tombstone, as one
    parquet file under `batch_path`: (changes in the batch, rows written). The same rows as the
    engine's window and join above, in two passes over raw's files: the keys and `_seq` of the
    whole batch, then from each file only its rows that won. None (the engine's path then) where
    raw's files alone are not the table (a reader feature) or raw holds one change twice."""
    # What arrow's allocator kept from the runs before (the landed rows of raw) goes back first.
    pa.default_memory_pool().release_unused()
    listed = delta.local_data_files(batch.raw_path, batch.raw_version)
    tomb_listed = delta.local_data_files(tombstones)
    if listed is None or tomb_listed is None:
        return None
    schema, files = listed
    if batch.days is not None:
        days = set(batch.days)
        files = {f: p for f, p in files.items() if str(p.get(batch.partition_column))[:10] in days}
    files = sorted(files)
    # Pass 1: keys and _seq of every change, with where it is (file, row); the newest per key.
    id_cols = [*keys, "_seq"]
    id_schema = pa.schema([schema.field(c) for c in id_cols])
    parts = []
    for i, f in enumerate(files):
        new = _new_rows(f, batch.applied)
        if new is not None and not new.any():
            continue  # every change of the file is applied already
        t = pads.dataset(f, schema=id_schema, format="parquet").to_table()
        t = t.append_column(
            "_lake_file", pa.array(np.full(t.num_rows, i, dtype=np.int32))
        ).append_column("_lake_row", pa.array(np.arange(t.num_rows, dtype=np.int64)))
        parts.append(t if new is None else t.filter(pa.array(new)))
    ids = pa.concat_tables(parts) if parts else None
    n = ids.num_rows if ids is not None else 0
    if n == 0:
        return 0, 0
    del parts
    # By key, newest first: _seq descending, then a stable sort by key (two one-level sorts
    # measured half the cost of one sort on both).
    newest_first = pc.array_sort_indices(ids.column("_seq"), order="descending")
    by_key = ids.select(list(keys)).take(newest_first)
    if len(keys) == 1:
        by_key = pc.array_sort_indices(by_key.column(0))
    else:
        by_key = pc.sort_indices(by_key, [(k, "ascending") for k in keys])
    ids = ids.take(newest_first.take(by_key))
    starts = _run_starts(ids.select(list(keys)))
    seq = ids.column("_seq")
    if (
        n > 1
        and (
            ~starts[1:]
            & pc.fill_null(pc.equal(seq.slice(1), seq.slice(0, n - 1)), False).to_numpy()
        ).any()
    ):
        return None
    latest = ids.filter(pa.array(starts))
    del ids, seq
    tomb_schema, tomb_files = tomb_listed
    if tomb_files:
        tomb = pads.dataset(sorted(tomb_files), schema=tomb_schema, format="parquet").to_table(
            columns=id_cols
        )
        tomb = tomb.rename_columns([*keys, "_lake_tomb_seq"])
        tomb = tomb.cast(
            pa.schema(
                [latest.schema.field(k) for k in keys] + [tomb.schema.field("_lake_tomb_seq")]
            )
        )
        latest = latest.join(tomb, list(keys), join_type="left outer")
        tomb_seq = latest.column("_lake_tomb_seq")
        # Not older than the tombstone, as in fresh_changes.
        newer = pc.greater_equal(latest.column("_seq"), tomb_seq)
        latest = latest.filter(pc.or_kleene(pc.is_null(tomb_seq), newer))
    if latest.num_rows == 0:
        return n, 0
    # Pass 2: file by file, the full rows of those changes, in bronze's types.
    latest = latest.select(["_lake_file", "_lake_row"])
    latest = latest.sort_by([("_lake_file", "ascending"), ("_lake_row", "ascending")])
    which = latest.column("_lake_file").to_numpy()
    rows = latest.column("_lake_row").to_numpy()
    bounds = np.searchsorted(which, np.arange(len(files) + 1))
    bronze_types = pa.schema(delta.delta_table(bronze).schema().to_arrow())
    cols = [f.name for f in schema if f.name not in RAW_ONLY or f.name == "_op"]
    out = pa.schema(
        [bronze_types.field(c) if c in bronze_types.names else schema.field(c) for c in cols]
    )
    read_schema = pa.schema([schema.field(c) for c in cols])
    os.makedirs(batch_path, exist_ok=True)
    # Read once, right away, then deleted: no dictionary, not compressed.
    staged = os.path.join(batch_path, "part-00000.parquet")
    with pq.ParquetWriter(staged, out, use_dictionary=False, compression="none") as w:
        for i, f in enumerate(files):
            if bounds[i] == bounds[i + 1]:
                continue
            t = pads.dataset(f, schema=read_schema, format="parquet").to_table()
            w.write_table(t.take(rows[bounds[i] : bounds[i + 1]]).cast(out))
            del t
    pa.default_memory_pool().release_unused()  # before delta-rs's merge takes its own memory
    return n, latest.num_rows


def _merge_in_process(
    staged: tuple[int, int],
    bronze: str,
    tombstones: str,
    batch_path: str,
    bronze_schema: ST.StructType,
    keys: tuple[str, ...],
    raw_version: int,
) -> ApplyStats:
    n_changes, applied = staged
    if applied == 0:
        return ApplyStats(n_changes, 0)
    # Streamed to delta-rs, not held here whole (nor read ahead): the merge keeps its own copy.
    batch = pads.dataset(batch_path, format="parquet")
    cols, missing = _split_columns(bronze_schema, batch.schema.names)
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    updates = {quote(c): f"s.{quote(c)}" for c in cols}
    updates.update({quote(c): "NULL" for c in missing})
    tomb_cols = {quote(k): f"s.{quote(k)}" for k in keys} | {"_seq": "s._seq"}

    def merge_tombstones() -> None:
        (
            delta.delta_table(tombstones)
            .merge(
                _stream(batch, [*keys, "_seq", "_op"]),
                predicate=on,
                source_alias="s",
                target_alias="t",
            )
            .when_matched_update({"_seq": "s._seq"}, predicate="s._op = 'D' AND s._seq > t._seq")
            .when_matched_delete(predicate="s._op <> 'D'")
            .when_not_matched_insert(tomb_cols, predicate="s._op = 'D'")
            .execute()
        )

    def merge_bronze() -> None:
        (
            delta.delta_table(bronze)
            .merge(
                _stream(batch),
                predicate=on,
                source_alias="s",
                target_alias="t",
                commit_properties=delta.with_transaction(WATERMARK_APP_ID, raw_version),
            )
            .when_matched_delete(predicate="s._seq > t._seq AND s._op = 'D'")
            .when_matched_update(updates, predicate="s._seq > t._seq")
            .when_not_matched_insert(
                {quote(c): f"s.{quote(c)}" for c in cols}, predicate="s._op <> 'D'"
            )
            .execute()
        )

    _tombstones_then_bronze(tombstones, merge_tombstones, merge_bronze)
    pa.default_memory_pool().release_unused()  # arrow's allocator keeps freed memory otherwise
    return ApplyStats(n_changes, applied)


def _stream(batch, columns: list[str] | None = None):
    return batch.scanner(columns=columns, batch_readahead=0, fragment_readahead=0).to_reader()
