"""raw/<source>/<table>: every change ever landed, exactly once, daily-partitioned by file date."""


import datetime as dt
import time

from typing import Any

import dagster as dg

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta
from lake_assets.lib.changes import LandedFileError
from lake_assets.resources.io_manager import PARTITION_COLUMN, WRITE_MODE, LocalRows
from lake_assets.resources.lake import LakeResource, LandingResource
from lake_assets.resources.spark import SparkResource

PARTITION_COL = "_file_date"


def partitions_for(source: Source) -> dg.DailyPartitionsDefinition:
    # end_offset=1: today's partition exists while today's files are still landing.
    return dg.DailyPartitionsDefinition(start_date=source.start_date.isoformat(), timezone="UTC", end_offset=1)


def raw_asset(source: Source, table: Table) -> dg.AssetsDefinition:
    key = asset_key("raw", source.name, table.name)

    @dg.asset(
        key=key,
        group_name="raw",
        partitions_def=partitions_for(source),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "delta"},
        tags={"layer": "raw", "source": source.name},
        metadata={WRITE_MODE: "replace_partitions", PARTITION_COLUMN: PARTITION_COL, "lake/primary_key": list(table.primary_key)},
        description=(
            f"Every change of {source.name}.{table.schema}.{table.name} as landed by {source.format.upper()}: "
            f"one row per change (I/U/D) per landed file, each held once. Partitioned by the day of the "
            f"file (a full load belongs to the first day); `_seq` orders the table's changes."
        ),
    )
    def _raw(context: dg.AssetExecutionContext, spark: SparkResource, landing: LandingResource, lake: LakeResource,
             step_launcher: dg.ResourceParam[Any]):
        started = time.monotonic()
        tw = context.partition_time_window
        first = tw.start.date()
        last = (tw.end - dt.timedelta(days=1)).date()
        files = landing.files_in(source, table, first, last)
        context.log.info(f"{len(files)} landed file(s) of {source.name}.{table.name} for {first}..{last}")
        try:
            rows = landing.read(source, table, files, progress=context.log.info)
        except LandedFileError as e:
            raise dg.Failure(description=str(e), metadata={"file": str(e).split(":", 1)[0]}) from None
        session = spark.session()
        path = lake.table("raw", source.name, table.name)
        if rows.num_rows == 0:
            if not delta.exists(path):
                context.log.info("nothing landed yet; no table written")
                return None
            out = session.createDataFrame([], delta.schema_of(session, path))
        else:
            out = LocalRows(rows)  # written by the IO manager, which then lets go of them
        context.add_output_metadata(
            {"files": len(files), "changes": rows.num_rows, "read_seconds": round(time.monotonic() - started, 2)}
        )
        return out

    return _raw


def build(catalog) -> list[dg.AssetsDefinition]:
    return [raw_asset(s, t) for s in catalog.sources for t in s.tables]
