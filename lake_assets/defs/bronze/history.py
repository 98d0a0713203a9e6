"""bronze/<source>/<table>_history: every version of every row (SCD type 2), for the tables whose
catalog entry says `history:`; applied incrementally from raw, with its checks."""

import datetime as dt
from typing import Any

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from lake_assets.catalog import HISTORY_SUFFIX, Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta, plan, storage
from lake_assets.lib import history as historylib
from lake_assets.lib.delta import quote
from lake_assets.lib.retry import with_commit_retry
from lake_assets.resources import scratch
from lake_assets.resources.io_manager import PRIMARY_KEY, table_metadata
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..automation import AFTER_ANY_PARTITION
from ..checks import blocking_check, no_table_yet
from ..specs import describe


def history_name(table: Table) -> str:
    return table.name + HISTORY_SUFFIX


def _spec(table: Table) -> historylib.Spec:
    return historylib.Spec(tuple(table.primary_key), tuple(table.history.untracked))


def _apply(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lake: LakeResource,
    source: Source,
    table: Table,
    batch,
) -> historylib.HistoryStats:
    parent = lake.state(source.name, table.name, "history_batch")
    for run_id in scratch.sweep(context.instance, parent, context.run.run_id):
        context.log.info(f"removed {parent}/{run_id}, left by a run no longer in progress")
    batch_path = f"{parent}/{context.run.run_id}"
    scratch.claim(batch_path)

    def replace() -> historylib.HistoryStats:
        return historylib.apply_history(
            spark.session(),
            batch,
            path=lake.table("bronze", source.name, history_name(table)),
            batch_path=batch_path,
            spec=_spec(table),
            name=f"bronze/{source.name}/{history_name(table)}",
            embedded=spark.embedded(),
        )

    try:
        return with_commit_retry(replace, log=context.log)
    finally:
        storage.remove_tree(batch_path)


def history_asset(source: Source, table: Table) -> dg.AssetsDefinition:
    untracked = table.history.untracked
    grain = (
        f"Every version of every row of {source.name}.{table.schema}.{table.name} (SCD type "
        f"2), one row per {', '.join(table.primary_key)} and `_valid_from`: the source's "
        f"columns, valid from `_valid_from` to `_valid_to` (null while "
        f"current, `_is_current`), in raw's order whatever order files landed in."
    )
    if untracked:
        grain += f" Changes to {', '.join(untracked)} alone open no version."

    @dg.asset(
        key=asset_key("bronze", source.name, history_name(table)),
        group_name="bronze",
        deps=[asset_key("raw", source.name, table.name)],
        kinds={"spark", "delta"},
        tags={"layer": "bronze", "source": source.name},
        metadata={PRIMARY_KEY: [*table.primary_key, "_valid_from"]},
        automation_condition=AFTER_ANY_PARTITION,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=table.freshness_hours)
        ),
        description=describe(table, grain),
    )
    def _history(
        context: dg.AssetExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        step_launcher: dg.ResourceParam[Any],
    ) -> dg.MaterializeResult:
        batch = plan.history_batch(lake.root, source.name, table.name, context.log)
        if batch is None:
            context.log.info(f"raw/{source.name}/{table.name} does not exist yet: nothing to apply")
            return dg.MaterializeResult()
        stats = _apply(context, spark, lake, source, table, batch)
        path = lake.table("bronze", source.name, history_name(table))
        return dg.MaterializeResult(
            metadata={
                "keys_recomputed": stats.keys,
                "versions_written": stats.versions,
                "raw_version": batch.raw_version,
                **table_metadata(spark.session(), path, dict(table.column_descriptions)),
            }
        )

    return _history


# -- checks -----------------------------------------------------------------------------------


def _own(df: DataFrame, columns: list[str]) -> DataFrame:
    return df.select(*[quote(c) for c in columns])


def current_diff(history: DataFrame, bronze: DataFrame) -> tuple[int, int]:
    """(bronze rows no current version equals, current versions no bronze row equals), on the
    source's columns."""
    columns = [c for c in history.columns if not c.startswith("_") and c in bronze.columns]
    current = _own(history.where("_is_current"), columns)
    rows = _own(bronze, columns)
    return rows.exceptAll(current).count(), current.exceptAll(rows).count()


def misordered(history: DataFrame, keys: list[str]) -> int:
    """Versions that end before they start, overlap the key's next version, share its start, or
    whose `_is_current` is not `_valid_to IS NULL`."""
    order = Window.partitionBy(*[quote(k) for k in keys]).orderBy(
        F.col("_valid_from").asc_nulls_first()
    )
    nxt = history.withColumn("_next_from", F.lead("_valid_from").over(order)).withColumn(
        "_has_next", F.lead(F.lit(1)).over(order).isNotNull()
    )
    bad = (
        (F.col("_valid_to") < F.col("_valid_from"))
        | (
            F.col("_has_next")
            & (
                F.col("_valid_to").isNull()
                | F.col("_next_from").isNull()
                | (F.col("_valid_to") > F.col("_next_from"))
                | F.col("_next_from").eqNullSafe(F.col("_valid_from"))
            )
        )
        | (F.col("_is_current") != F.col("_valid_to").isNull())
    )
    return nxt.where(bad).count()


def history_checks(source: Source, table: Table) -> list[dg.AssetChecksDefinition]:
    key = asset_key("bronze", source.name, history_name(table))
    bronze_key = asset_key("bronze", source.name, table.name)

    # After bronze (additional_deps): both are applied from the same raw in a run.
    @blocking_check(
        key,
        "current_versions_match_bronze",
        "The current versions are bronze's rows: same keys, same values.",
        additional_deps=[bronze_key],
    )
    def current_versions_match_bronze(
        spark: SparkResource, lake: LakeResource, step_launcher: dg.ResourceParam[Any]
    ) -> dg.AssetCheckResult:
        hpath = lake.table("bronze", source.name, history_name(table))
        bpath = lake.table("bronze", source.name, table.name)
        if not delta.exists(hpath) or not delta.exists(bpath):
            return no_table_yet(hpath)
        session = spark.session()
        missing, extra = current_diff(delta.read(session, hpath), delta.read(session, bpath))
        return dg.AssetCheckResult(
            passed=missing == 0 and extra == 0,
            metadata={"bronze_rows_not_current": missing, "current_versions_not_in_bronze": extra},
        )

    @blocking_check(
        key,
        "versions_do_not_overlap",
        "A key's versions never overlap; none ends before it starts.",
    )
    def versions_do_not_overlap(
        spark: SparkResource, lake: LakeResource, step_launcher: dg.ResourceParam[Any]
    ) -> dg.AssetCheckResult:
        path = lake.table("bronze", source.name, history_name(table))
        if not delta.exists(path):
            return no_table_yet(path)
        bad = misordered(delta.read(spark.session(), path), list(table.primary_key))
        return dg.AssetCheckResult(passed=bad == 0, metadata={"misordered_versions": bad})

    return [current_versions_match_bronze, versions_do_not_overlap]


def _with_history(catalog) -> list[tuple[Source, Table]]:
    return [(s, t) for s in catalog.sources for t in s.tables if t.history is not None]


def build(catalog) -> list[dg.AssetsDefinition]:
    return [history_asset(s, t) for s, t in _with_history(catalog)]


def build_checks(catalog) -> list[dg.AssetChecksDefinition]:
    return [c for s, t in _with_history(catalog) for c in history_checks(s, t)]
