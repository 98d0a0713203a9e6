"""The Delta IO manager: DataFrames (arrow tables, LocalRows) out to
<root>/<layer>/<source>/<table>, DataFrames back in.

How an output is written is declared on the asset, in its definition metadata:
- `lake/write_mode: overwrite`            the whole table, one commit
- `lake/write_mode: replace_partitions`   the run's time partition(s), by replaceWhere on
                                          `lake/partition_column` (one day or a backfill range)
Every write is one Delta commit, so a failed write leaves the table as it was. A table that does
not exist yet is first created empty (a commit of its schema, no rows), so that two runs creating
it at once conflict instead of both adding their rows (see write_frame). Bronze applies its CDC
batches itself, its watermark in its own commit (lake_assets.lib.cdc).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake_assets.keys import state_path, table_path
from lake_assets.lib import delta, storage
from lake_assets.lib.retry import LostWriteError, with_commit_retry
from lake_assets.resources import scratch
from lake_assets.resources.spark import SparkResource

WRITE_MODE = "lake/write_mode"
PARTITION_COLUMN = "lake/partition_column"
PRIMARY_KEY = "lake/primary_key"


COLUMN_DESCRIPTIONS = "lake/column_descriptions"


def column_schema(schema, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """The written table's columns as the UI shows them, described from the catalog."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                f.name,
                f.dataType.simpleString(),
                description=descriptions.get(f.name),
                constraints=dg.TableColumnConstraints(nullable=f.nullable),
            )
            for f in schema.fields
        ]
    )


def time_window_predicate(column: str, start: dt.datetime, end: dt.datetime) -> str:
    """replaceWhere for a run's partitions: [start, end) of a daily time window, as dates."""
    last = (end - dt.timedelta(days=1)).date()
    return (
        f"`{column}` >= DATE'{start.date().isoformat()}' AND `{column}` <= DATE'{last.isoformat()}'"
    )


class LocalRows:
    """Rows made in this process (an arrow table), for the IO manager to write as a DataFrame.

    The IO manager takes the rows out when it writes them: a run that keeps every step's output
    in memory (an in-process run, as `lake-assets sync` makes) then keeps this empty shell, not
    the rows, while the steps downstream run."""

    def __init__(self, rows: pa.Table):
        self.rows: pa.Table | None = rows


@dataclass
class MustHold:
    """Rows to write, and values of one column the table must hold once they are written (raw:
    the landed files it adds). Two replaceWhere overwrites of one partition that commit at once
    are not always seen to conflict by the embedded engine (raw/test_concurrent_adds.py): the
    later one then drops the earlier one's rows. The write is checked after its commit and done
    again (re-reading what the table holds) when they are gone."""

    output: object  # what the IO manager writes: a DataFrame, an arrow table or LocalRows
    column: str
    values: tuple[str, ...]


@contextlib.contextmanager
def writers_one_at_a_time(lock: str | None):
    """On a local lake, one writer of the table at a time across processes (an OS file lock
    beside the table's state): the embedded engine does not detect two such overwrites of one
    partition committing at once. No lock for `None` or an S3 lake (whose engines detect it:
    there the write is only checked after it commits)."""
    if lock is None or storage.is_s3(lock):
        yield
        return
    import fcntl

    Path(lock).parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def missing_values(path: str, column: str, values: tuple[str, ...]) -> list[str]:
    """Which of `values` no row of the table holds in `column` (read with delta-rs)."""
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    sql = f'SELECT DISTINCT "{column}" FROM t WHERE "{column}" IN ({listed})'
    held = {row[0] for row in delta.query(path, sql)}
    return [v for v in values if v not in held]


def as_frame(spark, obj, name: str) -> DataFrame:
    """An output as a DataFrame: a DataFrame, an arrow table, or LocalRows (taken out of it)."""
    if isinstance(obj, LocalRows):
        rows, obj.rows = obj.rows, None  # taken: the run's captured output no longer holds them
        if rows is None:
            raise dg.Failure(f"{name}: these rows were written already")
        return spark.createDataFrame(rows)
    if isinstance(obj, pa.Table):
        return spark.createDataFrame(obj)
    if not isinstance(obj, DataFrame):
        raise dg.Failure(
            f"{name}: expected a Spark DataFrame or an arrow table, got {type(obj).__name__}"
        )
    return obj


def partition_predicate(context: dg.OutputContext, meta: dict) -> str | None:
    """replaceWhere of the run's partitions (None for a run of no partition)."""
    if not context.has_asset_partitions:
        return None
    tw = context.asset_partitions_time_window
    return time_window_predicate(meta[PARTITION_COLUMN], tw.start, tw.end)


def table_metadata(spark, path: str, descriptions: dict[str, str] | None = None) -> dict:
    """What a materialization of the table at `path` reports of it, as written."""
    table = delta.read(spark, path)
    return {
        "dagster/row_count": table.count(),
        "delta_version": delta.version(path),
        "dagster/column_schema": column_schema(table.schema, descriptions),
        "dagster/uri": path,
    }


class DeltaIOManager(dg.ConfigurableIOManager):
    """Writes and reads the lake's Delta tables under `root`."""

    root: str
    spark: SparkResource

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        # What a run reads of each table's log is read once (lib/delta.py, logs_kept). Not for
        # a sensor's evaluation (no run): its resources may be left in another thread.
        if context.run is None:
            yield self
            return
        with delta.logs_kept():
            yield self

    def path_for(self, key: dg.AssetKey) -> str:
        layer, source, table = key.path
        return table_path(self.root, layer, source, table)

    def _meta(self, context) -> dict:
        return dict(context.definition_metadata or {})

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        meta = self._meta(context)
        mode = meta.get(WRITE_MODE, "overwrite")
        name = "/".join(context.asset_key.path)
        if mode not in ("overwrite", "replace_partitions"):
            raise dg.Failure(f"{name}: unknown {WRITE_MODE} {mode!r}")
        spark = self.spark.session()
        path = self.path_for(context.asset_key)
        hold = obj if isinstance(obj, MustHold) else None
        df = as_frame(spark, hold.output if hold else obj, name)
        predicate = partition_predicate(context, meta) if mode == "replace_partitions" else None
        staging = self._staging(context)
        staged = stage_local_rows(spark, df, staging)

        def write() -> None:
            with writers_one_at_a_time(self._lock(context) if hold else None):
                write_frame(spark, staged, path, name, mode, meta.get(PARTITION_COLUMN), predicate)
            lost = missing_values(path, hold.column, hold.values) if hold else []
            if lost:
                raise LostWriteError(
                    f"{name}: another writer's commit replaced the rows of {lost[:3]}; "
                    "writing again"
                )

        try:
            with_commit_retry(write, log=context.log)
        finally:
            storage.remove_tree(staging)  # also what the asset staged there itself (defs/raw)
        described = meta.get(COLUMN_DESCRIPTIONS)
        described = getattr(described, "value", described)
        context.add_output_metadata(table_metadata(spark, path, dict(described or {})))

    def _lock(self, context: dg.OutputContext) -> str:
        layer, source, table = context.asset_key.path
        return state_path(self.root, source, table, f"{layer}.write-lock")

    def _staging(self, context: dg.OutputContext) -> str:
        """The run's staging folder for the output, once those that killed runs left are gone."""
        layer, source, table = context.asset_key.path
        parent = state_path(self.root, source, table, f"staging/{layer}")
        scratch.sweep(context.step_context.instance, parent, context.run_id)
        return f"{parent}/{context.run_id}"

    def load_input(self, context: dg.InputContext) -> DataFrame:
        key = context.upstream_output.asset_key if context.upstream_output else context.asset_key
        path = self.path_for(key)
        if not delta.exists(path):
            raise dg.Failure(
                f"input {'/'.join(key.path)} has no Delta table at {path} yet: materialize it first"
            )
        return delta.read(self.spark.session(), path)


# A DataFrame made from local rows (createDataFrame of an arrow table) carries the rows inside
# its plan: a Spark Connect client sends them whole, in one gRPC message of at most 128 MiB,
# with every request on the plan (a schema look-up, the write). Above this size the rows go to
# the engine as parquet files instead, written once with pyarrow and read back by the engine.
STAGE_LOCAL_ROWS_BYTES = 16 << 20
STAGE_FILE_ROWS = 250_000


def stage_file_rows(num_rows: int) -> int:
    """Rows per staged file: at most STAGE_FILE_ROWS, and at least as many files as cores, so
    the engine reads and writes them in parallel (measured: one file of 200k rows is written
    by one core)."""
    files = max(os.cpu_count() or 1, math.ceil(num_rows / STAGE_FILE_ROWS))
    return max(1, math.ceil(num_rows / files))


def _stageable(t: pa.DataType) -> bool:
    # Types that parquet holds as Spark Connect's arrow form of them, exactly.
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_date32(t)
        or (pa.types.is_timestamp(t) and t.unit == "us" and t.tz in (None, "UTC"))
    )


def local_rows(df) -> pa.Table | None:
    """The arrow table behind a Spark Connect `createDataFrame(arrow table)`, else None."""
    try:
        from pyspark.sql.connect.dataframe import DataFrame as ConnectDataFrame
        from pyspark.sql.connect.plan import LocalRelation, ToDF
    except ImportError:  # pragma: no cover - pyspark without Spark Connect
        return None
    if not isinstance(df, ConnectDataFrame):
        return None
    plan = getattr(df, "_plan", None)
    if type(plan) is ToDF:
        child = plan._child
        if (
            type(child) is not LocalRelation
            or child._table is None
            or list(plan._cols) != child._table.column_names
        ):
            return None
        plan = child
    if type(plan) is not LocalRelation or plan._table is None or plan._schema is not None:
        return None
    return plan._table


def stage_local_rows(spark, df, staging: str, threshold: int = STAGE_LOCAL_ROWS_BYTES):
    """`df`, or, for a large DataFrame of local rows, the same rows written as parquet files
    under `staging` and read back (the caller removes `staging` after the write)."""
    import pyarrow.parquet as pq

    rows = local_rows(df)
    if rows is None or rows.nbytes < threshold or rows.num_rows == 0:
        return df
    if (
        not all(_stageable(f.type) for f in rows.schema)
        or len(set(rows.column_names)) != rows.num_columns
    ):
        return df
    fs, base = storage.filesystem(staging)
    storage.remove_tree(staging)
    scratch.claim(staging)
    # Read once, right away, then deleted: no dictionary pages (measured: half the cost of
    # writing), and not compressed on a local disk.
    compression = "snappy" if storage.is_s3(staging) else "none"
    per_file = stage_file_rows(rows.num_rows)
    for i, start in enumerate(range(0, rows.num_rows, per_file)):
        pq.write_table(
            rows.slice(start, per_file),
            f"{base}/part-{i:05d}.parquet",
            filesystem=fs,
            use_dictionary=False,
            compression=compression,
        )
    return spark.read.parquet(storage.engine_path(staging))


def write_frame(
    spark,
    df: DataFrame,
    path: str,
    name: str,
    mode: str,
    partition_column: str | None,
    predicate: str | None,
) -> None:
    """One commit: overwrite the table, or replace the partitions `predicate` selects.

    Both are a replaceWhere overwrite of an existing table (`delta.ALL_ROWS` for the whole
    table), the one kind of overwrite whose commit the embedded engine checks against another
    writer's: a plain overwrite of a new or empty table that loses the race is committed as an
    append, and both runs' rows stay (pinned in conformance/test_concurrency.py).
    """
    if not delta.exists(path):
        # Created empty by an append: it creates the table, or adds nothing when another run
        # created it first; the rows then go in like any other run's, conflicts detected.
        delta.create_empty(
            spark,
            df.schema,
            path,
            merge_schema=True,
            partition_by=partition_column if mode == "replace_partitions" else None,
        )
    current = delta.schema_of(spark, path)
    if mode == "overwrite" and {f.name for f in current.fields} - set(df.columns):
        # Columns gone from a recomputed table: its schema is replaced, which only a plain
        # overwrite does (not checked against a concurrent writer; a catalog change is rare).
        writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        writer.save(storage.engine_path(path))
        return
    wider = delta.widenings(current, df.schema)
    if wider:
        delta.widen_columns(
            spark, path, wider, partition_column if mode == "replace_partitions" else None
        )
        current = delta.schema_of(spark, path)
    added = delta.check_compatible(current, df.schema, name)
    if added:
        # The engine cannot evolve a schema in a replaceWhere overwrite ("schema evolution not
        # yet implemented"): add new columns first (an empty mergeSchema append).
        delta.add_columns(spark, path, added)
        current = delta.schema_of(spark, path)
    # Exactly the table's columns, null where the rows lack one (a day landed before it).
    df = delta.conform_to(df, current)
    df = df.select(
        *[
            df[f.name] if f.name in df.columns else F.lit(None).cast(f.dataType).alias(f.name)
            for f in current.fields
        ]
    )
    where = predicate if mode == "replace_partitions" and predicate else delta.ALL_ROWS
    if where != delta.ALL_ROWS:
        # The embedded engine does not reject rows outside replaceWhere (it appends them to
        # other partitions; pinned in conformance): keep only the run's rows.
        df = df.where(where)
    df.write.format("delta").mode("overwrite").option("replaceWhere", where).save(
        storage.engine_path(path)
    )
