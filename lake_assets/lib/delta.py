"""Delta table helpers that every engine understands (DataFrame writes, SQL MERGE), plus
log inspection through delta-rs (`deltalake`), which reads the same files independently."""

from __future__ import annotations

import contextlib
import json
import threading

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as ST

from lake_assets.lib import storage
from lake_assets.lib.retry import with_commit_retry


class SchemaConflictError(ValueError):
    """New data has a column whose type cannot be stored in the table's existing column."""


class _Kept:
    def __init__(self) -> None:
        self.tables: dict[str, object] = {}
        self.depth = 0


class _Handles(threading.local):
    """This thread's delta-rs handle of each table it has read, while `logs_kept` is open."""

    def __init__(self) -> None:
        self.kept = _Kept()


_handles = _Handles()


@contextlib.contextmanager
def logs_kept():
    """Within it, this thread keeps one delta-rs handle per table (see `delta_table`); the
    handles are dropped when the outermost one exits. The `lake` resource and the IO manager
    open it for a run's life: what a run reads of each table's log is read once, and the next
    run starts afresh, whatever happened to the lake in between. It closes what it opened
    even when it is left from another thread than the one that entered it."""
    kept = _handles.kept
    kept.depth += 1
    try:
        yield
    finally:
        kept.depth -= 1
        if kept.depth <= 0:
            kept.depth = 0
            kept.tables.clear()


def delta_table(path: str, version: int | None = None):
    """The table at `path` for delta-rs (deltalake.DeltaTable), at its latest version (or at
    `version`).

    Within `logs_kept`, the log is read once: the handle is kept, and each later call reads
    only the commits made since (`update_incremental`: one listing of the log after the
    version it holds, on S3 one LIST and one GET of `_last_checkpoint`, instead of every commit
    file again). So every caller still sees every commit, its own and other writers', made
    before the call. A table that is removed and created again under the same path within it
    is seen anew once `exists` has found it absent (which every writer of the lake asks before
    it creates a table). Outside it, every call reads the log afresh.
    """
    from deltalake import DeltaTable

    held = _handles.kept.tables.get(path)
    if version is not None:
        if held is not None and held.version() == version:
            return held
        return DeltaTable(path, version=version, storage_options=_options(path))
    if held is not None:
        try:
            held.update_incremental()
            return held
        except Exception:  # the log is gone or unreadable: read it afresh, as a first time
            forget(path)
    table = DeltaTable(path, storage_options=_options(path))
    if _handles.kept.depth:
        _handles.kept.tables[path] = table
    return table


def forget(path: str | None = None) -> None:
    """Drop this thread's handle of the table at `path` (of every table for None)."""
    if path is None:
        _handles.kept.tables.clear()
    else:
        _handles.kept.tables.pop(path, None)


def _options(path: str) -> dict[str, str] | None:
    return storage.storage_options(path) or None


def exists(path: str) -> bool:
    from deltalake import DeltaTable

    if DeltaTable.is_deltatable(path, storage_options=_options(path)):
        return True
    forget(path)
    return False


def version(path: str) -> int | None:
    """The table's latest version, None when there is no table (one log read, not two)."""
    from deltalake.exceptions import TableNotFoundError

    try:
        return delta_table(path).version()
    except TableNotFoundError:
        forget(path)
        return None


def arrow_schema(path: str):
    """The table's schema as arrow types, read from its log (no engine)."""
    import pyarrow as pa

    return pa.schema(delta_table(path).schema().to_arrow())


def transaction_version(path: str, app_id: str) -> int | None:
    """The version of the latest application transaction `app_id` committed to the table."""
    return delta_table(path).transaction_version(app_id)


def with_transaction(app_id: str, version: int):
    """Commit properties that record an application transaction in the commit they go with."""
    from deltalake import CommitProperties, Transaction

    return CommitProperties(app_transactions=[Transaction(app_id, version)])


def record_transaction(path: str, app_id: str, version: int) -> None:
    """A commit of no data that records only an application transaction (delta-rs)."""
    table = delta_table(path)
    table.create_write_transaction(
        actions=[],
        mode="append",
        schema=table.schema(),
        partition_by=table.metadata().partition_columns,
        commit_properties=with_transaction(app_id, version),
    )


def restore(path: str, version: int) -> None:
    """A commit that makes the table's rows those of `version` again (delta-rs)."""
    delta_table(path).restore(version)


def files_at(path: str, version: int | None = None) -> dict[str, dict]:
    """Data files of a version: path -> partition values."""
    return _add_files(delta_table(path, version))


def _add_files(table) -> dict[str, dict]:
    actions = table.get_add_actions(flatten=True)
    cols = actions.schema.names
    paths = actions.column("path").to_pylist()
    parts = {c: actions.column(c).to_pylist() for c in cols if c.startswith("partition.")}
    return {p: {c[len("partition.") :]: parts[c][i] for c in parts} for i, p in enumerate(paths)}


def local_data_files(path: str, version: int | None = None):
    """(arrow schema of the columns in the data files, absolute path of each data file -> its
    partition values) of a table on a local disk, or None when its files alone are not the
    table: a reader feature (deletion vectors, column mapping) needs a Delta reader."""
    import os
    from urllib.parse import unquote

    import pyarrow as pa

    table = delta_table(path, version)
    if table.protocol().min_reader_version > 1:
        return None
    parts = set(table.metadata().partition_columns)
    schema = pa.schema([f for f in pa.schema(table.schema().to_arrow()) if f.name not in parts])
    return schema, {os.path.join(path, unquote(p)): v for p, v in _add_files(table).items()}


def partitions_changed(path: str, since: int, column: str, upto: int | None = None) -> set:
    """Values of a partition column whose files were added or removed after version `since`
    (up to version `upto`: the latest when None)."""
    old, new = files_at(path, since), files_at(path, upto)
    changed = {v[column] for p, v in new.items() if p not in old}
    changed |= {v[column] for p, v in old.items() if p not in new}
    return changed


def query(path: str, sql: str, version: int | None = None) -> list[tuple]:
    """Rows of a SQL query over the table (registered as `t`, at `version`: the latest when
    None), run by delta-rs, not Spark:
    for sensors and planners that must not start an engine. QueryBuilder, not
    to_pyarrow_table(): the latter can abort the interpreter at exit (seen with deltalake 1.6.6)."""
    import pyarrow as pa
    from deltalake import QueryBuilder

    table = pa.table(
        QueryBuilder().register("t", delta_table(path, version)).execute(sql).read_all()
    )
    cols = [c.to_pylist() for c in table.columns]
    return list(zip(*cols)) if cols else []


# replaceWhere of every row: an overwrite of the whole table that the engine checks against a
# concurrent writer's commit (a plain overwrite of a new or empty table is not: both stay).
ALL_ROWS = "true"


def create_empty(
    spark: SparkSession,
    schema: ST.StructType,
    path: str,
    partition_by: str | None = None,
    merge_schema: bool = False,
) -> None:
    """Create the table with no rows, by an append: it creates the table, or adds nothing when
    another run created it at the same moment (the embedded engine retries the losing create;
    a create by overwrite would then empty what the other run already wrote)."""
    writer = spark.createDataFrame([], schema).write.format("delta").mode("append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(storage.engine_path(path))


def replace_all(spark: SparkSession, df: DataFrame, path: str) -> None:
    """Overwrite the whole table with `df` (same schema), created empty first when absent:
    one commit of the rows, which fails on a concurrent writer's commit rather than adding
    to it (and is then run again: the rows do not depend on what the table held)."""

    def write() -> None:
        if not exists(path):
            create_empty(spark, df.schema, path)
        writer = df.write.format("delta").mode("overwrite").option("replaceWhere", ALL_ROWS)
        writer.save(storage.engine_path(path))

    with_commit_retry(write)


def read(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(storage.engine_path(path))


def schema_of(spark: SparkSession, path: str) -> ST.StructType:
    """The table's schema as the engine reads it, from the log delta-rs holds (no engine
    round trip, which on S3 reads the whole log again). `spark` is kept for the callers."""
    del spark
    return spark_schema(delta_table(path).schema().to_json())


# Field metadata the embedded engine writes into the log (Spark's own, as JSON) and leaves out
# of the schema it reads back.
_SPARK_METADATA = "SPARK::metadata::json"


def spark_schema(delta_schema_json: str) -> ST.StructType:
    """A Delta log's schema (the JSON of Spark's StructType, by the Delta protocol) as Spark
    types, with each field's metadata as the engine reads it."""

    def clean(node):
        if isinstance(node, dict):
            out = {k: clean(v) for k, v in node.items()}
            meta = out.get("metadata")
            if isinstance(meta, dict) and _SPARK_METADATA in meta:
                spark_meta = meta.pop(_SPARK_METADATA)
                if isinstance(spark_meta, dict):
                    meta.update(spark_meta)
            return out
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    return ST.StructType.fromJson(clean(json.loads(delta_schema_json)))


_WIDENINGS = {
    (ST.IntegerType, ST.LongType),
    (ST.ShortType, ST.IntegerType),
    (ST.ShortType, ST.LongType),
    (ST.ByteType, ST.ShortType),
    (ST.ByteType, ST.IntegerType),
    (ST.ByteType, ST.LongType),
    (ST.FloatType, ST.DoubleType),
}


def check_compatible(
    table_schema: ST.StructType, new: ST.StructType, table_name: str
) -> list[ST.StructField]:
    """New columns of `new` (to add); raises SchemaConflictError naming table and column where a
    column's type changed in a way the table cannot hold."""
    have = {f.name: f.dataType for f in table_schema.fields}
    added = []
    for f in new.fields:
        old = have.get(f.name)
        if old is None:
            added.append(f)
        elif old != f.dataType and type(f.dataType) is not ST.NullType:
            if _widens(f.dataType, old):
                continue  # narrower data into a wider column: a safe cast
            raise SchemaConflictError(
                f"table {table_name}: column {f.name!r} is {old.simpleString()} in the lake but "
                f"the new data has {f.dataType.simpleString()}; an incompatible type change "
                "needs a rebuild of the table"
            )
    return added


def _widens(old: ST.DataType, new: ST.DataType) -> bool:
    """`new` holds every value of `old` (int -> bigint, float -> double, decimal precision up)."""
    if isinstance(old, ST.DecimalType) and isinstance(new, ST.DecimalType):
        return new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale
    return (type(old), type(new)) in _WIDENINGS


def widenings(table_schema: ST.StructType, new: ST.StructType) -> list[ST.StructField]:
    """The columns of `new` whose type widens the table's column of that name."""
    have = {f.name: f.dataType for f in table_schema.fields}
    return [
        f
        for f in new.fields
        if f.name in have and have[f.name] != f.dataType and _widens(have[f.name], f.dataType)
    ]


def widen_columns(
    spark: SparkSession, path: str, fields: list[ST.StructField], partition_by: str | None = None
) -> None:
    """Rewrite the table with these columns' wider types: a new column type needs a schema
    overwrite (the engine cannot widen a type in place; rare: a source's type change)."""
    if not fields:
        return
    wide = {f.name: f.dataType for f in fields}
    df = read(spark, path)
    df = df.select(
        *[df[quote(c)].cast(wide[c]).alias(c) if c in wide else df[quote(c)] for c in df.columns]
    )
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    (writer.partitionBy(partition_by) if partition_by else writer).save(storage.engine_path(path))


def conform_to(df: DataFrame, table_schema: ST.StructType) -> DataFrame:
    """Cast df's columns to the table's types where they differ only by a safe widening."""
    have = {f.name: f.dataType for f in table_schema.fields}
    cols = []
    for f in df.schema.fields:
        t = have.get(f.name)
        cols.append(
            df[f.name].cast(t).alias(f.name) if t is not None and t != f.dataType else df[f.name]
        )
    return df.select(*cols)


def add_columns(spark: SparkSession, path: str, fields: list[ST.StructField]) -> None:
    """Add nullable columns: an append of no rows with mergeSchema (one commit, no data)."""
    if not fields:
        return
    schema = ST.StructType(
        list(schema_of(spark, path).fields)
        + [ST.StructField(f.name, f.dataType, True) for f in fields]
    )
    writer = spark.createDataFrame([], schema).write.format("delta").mode("append")
    writer.option("mergeSchema", "true").save(storage.engine_path(path))


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
