"""bronze/<source>/<table>: the current state of each source table, applied from raw as it grows."""

import datetime as dt
from typing import Any

import dagster as dg
import pyarrow.fs as pafs

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import cdc, plan, storage
from lake_assets.lib.cdc import ChangeBatch
from lake_assets.lib.retry import with_commit_retry
from lake_assets.resources import scratch
from lake_assets.resources.io_manager import PRIMARY_KEY, table_metadata
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..automation import AFTER_ANY_PARTITION
from ..specs import describe


def remove_leftovers(
    context: dg.AssetExecutionContext, lake: LakeResource, source: str, table: str
) -> None:
    """The batch and staging folders that killed runs left for this table (resources/scratch)."""
    parents = [lake.state(source, table, "batch")]
    fs, base = storage.filesystem(lake.state(source, table, "staging"))
    parents += [
        lake.state(source, table, f"staging/{info.base_name}")
        for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        if info.type == pafs.FileType.Directory
    ]
    for parent in parents:
        for run_id in scratch.sweep(context.instance, parent, context.run.run_id):
            context.log.info(f"removed {parent}/{run_id}, left by a run no longer in progress")


def apply(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lake: LakeResource,
    source: str,
    table: Table,
    batch: ChangeBatch,
) -> cdc.ApplyStats:
    """Apply the batch, bronze's watermark in bronze's commit; all of it again on a conflict."""
    bronze_path = lake.table("bronze", source, table.name)
    # A batch folder of this run's own: two runs applying to one table never share it.
    batch_path = lake.state(source, table.name, f"batch/{context.run.run_id}")
    scratch.claim(batch_path)

    def merge() -> cdc.ApplyStats:
        return cdc.apply_changes(
            spark.session(),
            batch,
            bronze=bronze_path,
            tombstones=lake.state(source, table.name, "tombstones"),
            batch_path=batch_path,
            keys=tuple(table.primary_key),
            name=f"bronze/{source}/{table.name}",
            embedded=spark.embedded(),
            engine_txn=spark.records_app_transactions(),
            truncates=lake.state(source, table.name, "truncates"),
        )

    try:
        stats = with_commit_retry(merge, log=context.log)
    finally:
        storage.remove_tree(batch_path)
    # Bronze's log holds the watermark now: the table of before is not read again.
    storage.remove_tree(lake.state(source, table.name, "watermark"))
    return stats


def _grain(table: Table) -> str:
    keys = table.primary_key
    return f"({', '.join(keys)})" if len(keys) > 1 else keys[0]


def bronze_asset(source: Source, table: Table) -> dg.AssetsDefinition:
    key = asset_key("bronze", source.name, table.name)

    @dg.asset(
        key=key,
        group_name="bronze",
        deps=[asset_key("raw", source.name, table.name)],
        kinds={"spark", "delta"},
        tags={"layer": "bronze", "source": source.name},
        metadata={PRIMARY_KEY: list(table.primary_key)},
        # Not eager(): eager waits while any raw partition is missing, and most days of a
        # source have no files. Bronze wants the new changes of any raw partition.
        automation_condition=AFTER_ANY_PARTITION,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=table.freshness_hours)
        ),
        description=describe(
            table,
            f"The current state of {source.name}.{table.schema}.{table.name}: one row per live "
            f"{_grain(table)}, the latest change per key wins (deleted keys absent). Source "
            f"columns keep their names and types; `_commit_ts` and `_seq` tell which change "
            f"wrote the row.",
        ),
    )
    def _bronze(
        context: dg.AssetExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ) -> dg.MaterializeResult:
        remove_leftovers(context, lake, source.name, table.name)
        batch = plan.bronze_batch(lake.root, source.name, table.name, context.log)
        if batch is None:
            context.log.info(f"raw/{source.name}/{table.name} does not exist yet: nothing to apply")
            return dg.MaterializeResult()
        stats = apply(context, spark, lake, source.name, table, batch)
        return dg.MaterializeResult(
            metadata={
                "changes": stats.changes,
                "changes_applied": stats.applied,
                "raw_version": batch.raw_version,
                **table_metadata(
                    spark.session(),
                    lake.table("bronze", source.name, table.name),
                    dict(table.column_descriptions),
                ),
            }
        )

    return _bronze


def build(catalog) -> list[dg.AssetsDefinition]:
    return [bronze_asset(s, t) for s in catalog.sources for t in s.tables]
