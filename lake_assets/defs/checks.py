"""Asset checks of raw and bronze: each blocking, each an assertion that can fail."""


import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake_assets.catalog import Source, Table
from lake_assets.keys import asset_key
from lake_assets.lib import delta
from lake_assets.lib.delta import quote
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource


def _missing(path: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"note": f"no table at {path} yet"})


def raw_checks(source: Source, table: Table) -> list[dg.AssetChecksDefinition]:
    key = asset_key("raw", source.name, table.name)

    @dg.asset_check(asset=key, name="no_change_held_twice", blocking=True,
                    description="Each landed change (file name, position) is held once.")
    def no_change_held_twice(spark: SparkResource, lake: LakeResource) -> dg.AssetCheckResult:
        path = lake.table("raw", source.name, table.name)
        if not delta.exists(path):
            return _missing(path)
        raw = delta.read(spark.session(), path)
        # groupBy, not count(DISTINCT a, b): the same answer, ~150x faster on the embedded engine.
        twice = raw.groupBy("_source_file", "_file_pos").count().where("count > 1").count()
        return dg.AssetCheckResult(passed=twice == 0, metadata={"rows": raw.count(), "changes_held_more_than_once": twice})

    return [no_change_held_twice]


def _primary_key_unique(layer: str, source: Source, table: Table) -> dg.AssetChecksDefinition:
    keys = table.primary_key

    @dg.asset_check(asset=asset_key(layer, source.name, table.name), name="primary_key_unique", blocking=True,
                    description=f"No two rows share ({', '.join(keys)}).")
    def primary_key_unique(spark: SparkResource, lake: LakeResource) -> dg.AssetCheckResult:
        path = lake.table(layer, source.name, table.name)
        if not delta.exists(path):
            return _missing(path)
        dups = delta.read(spark.session(), path).groupBy(*keys).count().where("count > 1").count()
        return dg.AssetCheckResult(passed=dups == 0, metadata={"duplicate_keys": dups})

    return primary_key_unique


def bronze_checks(source: Source, table: Table) -> list[dg.AssetChecksDefinition]:
    key = asset_key("bronze", source.name, table.name)
    keys = table.primary_key
    kcols = ", ".join(quote(k) for k in keys)

    primary_key_unique = _primary_key_unique("bronze", source, table)

    @dg.asset_check(asset=key, name="primary_key_not_null", blocking=True,
                    description=f"No row has a null in ({', '.join(keys)}).")
    def primary_key_not_null(spark: SparkResource, lake: LakeResource) -> dg.AssetCheckResult:
        path = lake.table("bronze", source.name, table.name)
        if not delta.exists(path):
            return _missing(path)
        cond = " OR ".join(f"{quote(k)} IS NULL" for k in keys)
        nulls = delta.read(spark.session(), path).where(cond).count()
        return dg.AssetCheckResult(passed=nulls == 0, metadata={"null_key_rows": nulls})

    @dg.asset_check(asset=key, name="live_keys_match_raw", blocking=True,
                    description="Bronze's keys are exactly the keys whose latest change in raw is not a delete.")
    def live_keys_match_raw(spark: SparkResource, lake: LakeResource) -> dg.AssetCheckResult:
        session = spark.session()
        bpath, rpath = lake.table("bronze", source.name, table.name), lake.table("raw", source.name, table.name)
        if not delta.exists(bpath) or not delta.exists(rpath):
            return _missing(bpath)
        missing, extra = _live_keys_diff(delta.read(session, rpath), delta.read(session, bpath), keys)
        return dg.AssetCheckResult(
            passed=missing == 0 and extra == 0,
            metadata={"keys_missing_from_bronze": missing, "keys_not_live_in_raw": extra, "key": kcols},
        )

    return [primary_key_unique, primary_key_not_null, live_keys_match_raw]


def _live_keys_diff(raw: DataFrame, bronze: DataFrame, keys) -> tuple[int, int]:
    """(live keys of raw missing from bronze, bronze rows beyond one per live key): the latest
    change of each key (by max `_seq`, joined back for its `_op`) against bronze's rows counted
    per key, nulls equal. The same counts as `exceptAll` both ways over a window, by
    aggregates and joins: measured 1.0 s instead of 11 s at 1.2M changes in Sail 0.7."""
    last = raw.groupBy(*keys).agg(F.max("_seq").alias("_last_seq"))
    changes = raw.select(*keys, "_seq", "_op")
    newest = [changes[k].eqNullSafe(last[k]) for k in keys] + [changes["_seq"] == last["_last_seq"]]
    live = changes.join(last, on=newest).where(changes["_op"] != "D") \
        .select(*[changes[k] for k in keys]).withColumn("_live", F.lit(1))
    have = bronze.groupBy(*keys).agg(F.count(F.lit(1)).alias("_rows"))
    both = live.join(have, on=[live[k].eqNullSafe(have[k]) for k in keys], how="full")
    row = both.agg(
        F.sum(F.when(F.col("_rows").isNull(), 1).otherwise(0)).alias("missing"),
        F.sum(F.when(F.col("_live").isNull(), F.col("_rows")).otherwise(F.col("_rows") - 1)).alias("extra"),
    ).collect()[0]
    return int(row["missing"] or 0), int(row["extra"] or 0)


def silver_checks(source: Source, table: Table) -> list[dg.AssetChecksDefinition]:
    from lake_assets.defs.silver.assets import quarantine_name

    key = asset_key("silver", source.name, table.name)

    primary_key_unique = _primary_key_unique("silver", source, table)

    @dg.asset_check(asset=key, name="quarantine_rate_below_threshold", blocking=True,
                    description=f"At most {table.max_quarantine_rate:.1%} of the rows are quarantined.")
    def quarantine_rate_below_threshold(spark: SparkResource, lake: LakeResource) -> dg.AssetCheckResult:
        session = spark.session()
        path = lake.table("silver", source.name, table.name)
        qpath = lake.table("silver", source.name, quarantine_name(table.name))
        if not delta.exists(path):
            return _missing(path)
        kept = delta.read(session, path).count()
        quarantined = delta.read(session, qpath).count() if delta.exists(qpath) else 0
        total = kept + quarantined
        rate = quarantined / total if total else 0.0
        return dg.AssetCheckResult(
            passed=rate <= table.max_quarantine_rate,
            metadata={"quarantined": quarantined, "rows": total, "rate": round(rate, 6),
                      "threshold": table.max_quarantine_rate},
        )

    return [primary_key_unique, quarantine_rate_below_threshold]


def build(catalog) -> list[dg.AssetChecksDefinition]:
    out: list = []
    for s in catalog.sources:
        for t in s.tables:
            out += raw_checks(s, t) + bronze_checks(s, t) + silver_checks(s, t)
    return out
