"""bronze/<source>/<table>: the current state of each source table, applied incrementally from raw."""


import datetime as dt

from typing import Any

import dagster as dg

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta
from lake_assets.resources.io_manager import PRIMARY_KEY, WRITE_MODE, ChangeBatch, read_watermark
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..raw.assets import PARTITION_COL


AFTER_ANY_PARTITION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after_any_raw_partition")


def new_changes(spark, lake: LakeResource, source: str, table: str, log=None) -> ChangeBatch | None:
    """The raw changes new since bronze last ran, up to raw's current version; None without raw.

    New means: in raw partitions whose files changed since the raw version bronze last
    consumed. A partition re-written whole comes back whole; re-applying is a no-op.
    """
    raw_path = lake.table("raw", source, table)
    if not delta.exists(raw_path):
        return None
    now = delta.version(raw_path)
    bronze_path = lake.table("bronze", source, table)
    mark = read_watermark(spark, lake.state(source, table, "watermark")) if delta.exists(bronze_path) else None
    if mark is None or mark > now:
        if log:
            log.info(f"no watermark: applying all of raw at version {now}")
        return ChangeBatch(raw_path, now, PARTITION_COL, None)
    if mark == now:
        return ChangeBatch(raw_path, now, PARTITION_COL, ())
    parts = sorted(str(p)[:10] for p in delta.partitions_changed(raw_path, mark, PARTITION_COL) if p is not None)
    if log:
        log.info(f"raw versions {mark}..{now}: {len(parts)} changed partition(s) {parts[:5]}{'...' if len(parts) > 5 else ''}")
    return ChangeBatch(raw_path, now, PARTITION_COL, tuple(parts))


def bronze_asset(source: Source, table: Table) -> dg.AssetsDefinition:
    key = asset_key("bronze", source.name, table.name)

    @dg.asset(
        key=key,
        group_name="bronze",
        deps=[asset_key("raw", source.name, table.name)],
        kinds={"spark", "delta"},
        tags={"layer": "bronze", "source": source.name},
        metadata={WRITE_MODE: "merge", PRIMARY_KEY: list(table.primary_key)},
        # Not eager(): eager waits while any raw partition is missing, and most days of a
        # source have no files. Bronze wants the new changes of any raw partition.
        automation_condition=AFTER_ANY_PARTITION,
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=table.freshness_hours)),
        description=(
            f"The current state of {source.name}.{table.schema}.{table.name}: one row per live "
            f"{'(' + ', '.join(table.primary_key) + ')' if len(table.primary_key) > 1 else table.primary_key[0]}, "
            f"the latest change per key wins (deleted keys absent). Source columns keep their names and "
            f"types; `_commit_ts` and `_seq` tell which change wrote the row."
        ),
    )
    def _bronze(context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource,
                step_launcher: dg.ResourceParam[Any]):
        batch = new_changes(spark.session(), lake, source.name, table.name, context.log)
        if batch is None:
            context.log.info(f"raw/{source.name}/{table.name} does not exist yet: nothing to apply")
        return batch

    return _bronze


def build(catalog) -> list[dg.AssetsDefinition]:
    return [bronze_asset(s, t) for s in catalog.sources for t in s.tables]
