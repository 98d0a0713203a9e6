"""Check builders every layer shares: a table not written yet, a key that must be unique."""

from typing import Any

import dagster as dg

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource


def blocking_check(key: dg.AssetKey, name: str, description: str, **more):
    """A blocking check of `key`: what reads the table runs only once it passed."""
    return dg.asset_check(asset=key, name=name, blocking=True, description=description, **more)


def no_table_yet(path: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"note": f"no table at {path} yet"})


def key_unique_check(layer: str, source: Source, table: Table) -> dg.AssetChecksDefinition:
    keys = table.primary_key

    @blocking_check(
        asset_key(layer, source.name, table.name),
        "primary_key_unique",
        f"No two rows share ({', '.join(keys)}).",
    )
    def primary_key_unique(
        spark: SparkResource, lake: LakeResource, step_launcher: dg.ResourceParam[Any]
    ) -> dg.AssetCheckResult:
        path = lake.table(layer, source.name, table.name)
        if not delta.exists(path):
            return no_table_yet(path)
        dups = delta.read(spark.session(), path).groupBy(*keys).count().where("count > 1").count()
        return dg.AssetCheckResult(passed=dups == 0, metadata={"duplicate_keys": dups})

    return primary_key_unique
