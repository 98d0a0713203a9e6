"""Check builders every layer shares: a table not written yet, a key that must be unique; and
the run tag that makes the checks that look at a sync's own changes look at whole tables."""

from collections.abc import Callable

import dagster as dg
from pyspark.sql import DataFrame

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

# A run tagged so (the full_checks job, its schedule, or a run launched with the tag) runs every
# check over whole tables; otherwise the checks of raw and bronze look at the changes of the
# sync they belong to (what bronze applies next, or applied last), whose cost is the batch's.
FULL_CHECKS_TAG = "lake/checks"
FULL = "full"


def is_full(context: dg.AssetCheckExecutionContext) -> bool:
    return context.run.tags.get(FULL_CHECKS_TAG) == FULL


def scope_metadata(scope: str) -> dict:
    return {"scope": scope}


def blocking_check(key: dg.AssetKey, name: str, description: str, **more):
    """A blocking check of `key`: what reads the table runs only once it passed."""
    return dg.asset_check(asset=key, name=name, blocking=True, description=description, **more)


def no_table_yet(path: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"note": f"no table at {path} yet"})


# (context, session, the table) -> (the rows to check, what they are: "table", "batch", ...)
Scope = Callable[[dg.AssetCheckExecutionContext, object, DataFrame], tuple[DataFrame, str]]


def key_unique_check(
    layer: str, source: Source, table: Table, scope: Scope | None = None
) -> dg.AssetChecksDefinition:
    """No two rows share the key; over the rows `scope` picks (all of them without one)."""
    keys = table.primary_key

    @blocking_check(
        asset_key(layer, source.name, table.name),
        "primary_key_unique",
        f"No two rows share ({', '.join(keys)}).",
    )
    def primary_key_unique(
        context: dg.AssetCheckExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> dg.AssetCheckResult:
        path = lake.table(layer, source.name, table.name)
        if not delta.exists(path):
            return no_table_yet(path)
        rows, what = delta.read(spark.session(), path), "table"
        if scope is not None:
            rows, what = scope(context, spark.session(), rows)
        dups = rows.groupBy(*keys).count().where("count > 1").count()
        return dg.AssetCheckResult(
            passed=dups == 0, metadata={"duplicate_keys": dups, **scope_metadata(what)}
        )

    return primary_key_unique
