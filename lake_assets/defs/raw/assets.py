"""raw/<source>/<table>: every change ever landed, exactly once, daily-partitioned by file date.

A run adds the landed files of its days that raw does not hold, and nothing else: it rewrites
its partitions as the rows raw holds there plus the new files' rows, read from the table when
the write runs, so a write retried after another writer's commit keeps that writer's rows too
(a replaceWhere overwrite is conflict-checked; an append is not, and would hold rows twice).
A file removed from the landing zone after it entered raw leaves its rows where they are.
"""

import datetime as dt
import time
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from lake_assets.catalog import Source, Table
from lake_assets.formats.base import LandedFile, LandedFileError
from lake_assets.keys import asset_key, extract_key, state_path
from lake_assets.lib import delta, plan
from lake_assets.lib import raw as rawlib
from lake_assets.resources.io_manager import (
    PARTITION_COLUMN,
    WRITE_MODE,
    LocalRows,
    MustHold,
    stage_local_rows,
    time_window_predicate,
)
from lake_assets.resources.lake import LakeResource, LandingResource
from lake_assets.resources.spark import SparkResource

from ..extract.assets import EXTRACTED_FORMATS
from ..specs import column_metadata, describe

PARTITION_COL = plan.RAW_PARTITION


def partitions_for(source: Source) -> dg.DailyPartitionsDefinition:
    # end_offset=1: today's partition exists while today's files are still landing.
    return dg.DailyPartitionsDefinition(
        start_date=source.start_date.isoformat(), timezone="UTC", end_offset=1
    )


def new_files(
    source: Source, table: Table, landing: LandingResource, root: str, first: dt.date, last: dt.date
) -> list[LandedFile]:
    """The files of days first..last that raw does not hold (LandedFileError names a file that
    cannot enter: one dated past every partition, or a held name landed with other content)."""
    files = landing.files(source, table)
    final = dt.date.fromisoformat(partitions_for(source).get_last_partition_key())
    late = [f for f in files if f.partition_date > final]
    if late:
        raise LandedFileError(
            f"{late[0].path}: dated {late[0].partition_date}, after the last daily partition "
            f"of raw/{source.name}/{table.name} ({final}); no run can place its changes"
        )
    return landing.to_add(
        source,
        table,
        rawlib.files_in(files, first, last),
        rawlib.held_files(root, source.name, table.name),
    )


def with_held_rows(spark, path: str, rows: pa.Table, window: str, staging: str):
    """The window's rows after the write: what raw holds there (read when the write runs, not
    now) but for the files being added, plus their rows. The rows are staged as files under
    `staging` when large; the IO manager removes the run's staging folder after the write."""
    if rows.num_rows == 0:
        return None
    if not delta.exists(path):
        return LocalRows(rows)
    # The rows' schema from arrow, not from the engine: asking a DataFrame of local rows for
    # its schema sends every row to the engine (0.4-0.6 s for 200k rows, bench/cdc_apply.py).
    wider = delta.widenings(delta.schema_of(spark, path), from_arrow_schema(rows.schema))
    delta.widen_columns(spark, path, wider, PARTITION_COL)  # before the held rows are read
    names = sorted(pc.unique(rows.column("_source_file")).to_pylist())
    held = delta.read(spark, path).where(window).where(~F.col("_source_file").isin(names))
    return _union(held, stage_local_rows(spark, spark.createDataFrame(rows), staging))


def _union(a, b):
    """a's rows and b's by column name, null where one lacks a column (typed: the engine makes
    an untyped null column of unionByName's, which a Delta table cannot hold)."""
    types = {f.name: f.dataType for f in [*b.schema.fields, *a.schema.fields]}
    names = list(dict.fromkeys([*a.columns, *b.columns]))

    def full(df):
        return df.select(
            *[
                F.col(delta.quote(n)) if n in df.columns else F.lit(None).cast(types[n]).alias(n)
                for n in names
            ]
        )

    return full(a).unionByName(full(b))


def raw_asset(source: Source, table: Table) -> dg.AssetsDefinition:
    key = asset_key("raw", source.name, table.name)
    # A source the lake extracts itself lands its files through extract/<source>.
    deps = [extract_key(source.name)] if source.format in EXTRACTED_FORMATS else []

    @dg.asset(
        key=key,
        deps=deps,
        group_name="raw",
        partitions_def=partitions_for(source),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "delta"},
        tags={"layer": "raw", "source": source.name},
        metadata={
            WRITE_MODE: "replace_partitions",
            PARTITION_COLUMN: PARTITION_COL,
            "lake/primary_key": list(table.primary_key),
            **column_metadata(table),
        },
        description=describe(
            table,
            f"Every change of {source.name}.{table.schema}.{table.name} as landed "
            f"({source.format}): one row per change (I/U/D/T) per landed file, each held once, "
            f"kept when the landed file is gone. Partitioned by the day of the "
            f"file (a full load belongs to the first day); `_seq` orders the table's changes.",
        ),
    )
    def _raw(
        context: dg.AssetExecutionContext,
        spark: SparkResource,
        landing: LandingResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ):
        started = time.monotonic()
        tw = context.partition_time_window
        first, last = tw.start.date(), (tw.end - dt.timedelta(days=1)).date()
        path = lake.table("raw", source.name, table.name)
        try:
            files = new_files(source, table, landing, lake.root, first, last)
            context.log.info(
                f"{len(files)} new landed file(s) of {source.name}.{table.name} for {first}..{last}"
            )
            lake_schema = delta.arrow_schema(path) if files and delta.exists(path) else None
            rows = landing.read(
                source,
                table,
                files,
                progress=context.log.info,
                lake_schema=lake_schema,
                lake_root=lake.root,
            )
        except LandedFileError as e:
            raise dg.Failure(description=str(e)) from None
        staging = state_path(
            lake.root, source.name, table.name, f"staging/raw/{context.run.run_id}"
        )
        window = time_window_predicate(PARTITION_COL, tw.start, tw.end)
        with_rows = set(pc.unique(rows.column("_source_file")).to_pylist())
        empty = [f for f in files if f.name not in with_rows]
        rawlib.record_empty(spark.session(), lake.root, source.name, table.name, empty)
        out = with_held_rows(spark.session(), path, rows, window, staging)
        if out is None:
            context.add_output_metadata({"skipped": "no landed file that raw does not hold"})
            return None
        context.add_output_metadata(
            {
                "files": len(files),
                "changes": rows.num_rows,
                "read_seconds": round(time.monotonic() - started, 2),
            }
        )
        # Raw must hold the files it adds once written (else it writes again).
        return MustHold(out, "_source_file", tuple(sorted(with_rows)))

    return _raw


def build(catalog) -> list[dg.AssetsDefinition]:
    return [raw_asset(s, t) for s in catalog.sources for t in s.tables]
