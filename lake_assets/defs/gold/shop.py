"""gold/shop/*: the demo shop's KPIs (daily_sales as the contract defines it, and two more)."""

import datetime as dt
from typing import Any

import dagster as dg

from lake_assets.catalog import Source, load_catalog
from lake_assets.keys import asset_key
from lake_assets.lib import delta, fingerprint, shop_gold
from lake_assets.resources.io_manager import PARTITION_COLUMN, WRITE_MODE
from lake_assets.resources.lake import LakeResource
from lake_assets.resources.spark import SparkResource

from ..planners import SYNC_PARTITIONS, planner
from ..raw.assets import partitions_for

# Gold is due daily by 06:00 UTC with the previous day complete.
GOLD_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *", lower_bound_delta=dt.timedelta(hours=24))
GOLD_TABLES = ("daily_sales", "product_daily_sales", "customer_lifetime_value")


def _silver(spark, lake: LakeResource, source: str, *tables: str):
    out = []
    for t in tables:
        path = lake.table("silver", source, t)
        if not delta.exists(path):
            raise dg.Failure(f"silver/{source}/{t} has no table yet: sync silver first")
        out.append(delta.read(spark, path))
    return out


def _frames(name: str, spark, lake: LakeResource, source: str, start=None, end=None):
    if name == "daily_sales":
        orders, items = _silver(spark, lake, source, "orders", "order_items")
        return shop_gold.daily_sales(spark, orders, items, start, end), ["order_date"]
    if name == "product_daily_sales":
        orders, items, products = _silver(spark, lake, source, "orders", "order_items", "products")
        return shop_gold.product_daily_sales(spark, orders, items, products, start, end), ["order_date", "product_id"]
    raise KeyError(name)


def dates_to_recompute(name: str, spark, lake: LakeResource, source: Source) -> list[dt.date]:
    """The order dates whose gold rows would change: recomputed from silver, compared with gold.
    None while silver has no tables yet (nothing landed)."""
    needed = ("orders", "order_items") + (("products",) if name == "product_daily_sales" else ())
    if not all(delta.exists(lake.table("silver", source.name, t)) for t in needed):
        return []
    fresh, keys = _frames(name, spark, lake, source.name)
    path = lake.table("gold", source.name, name)
    current = delta.read(spark, path) if delta.exists(path) else None
    today = dt.datetime.now(dt.timezone.utc).date()
    return [d for d in shop_gold.changed_dates(spark, fresh, current, keys) if source.start_date <= d <= today]


def _plan(node, settings, spark):
    _, source_name, name = node.key.path
    source = load_catalog(settings.sources).source(source_name)
    return dates_to_recompute(name, spark, LakeResource(root=settings.lake_root), source)


planner("shop_gold_dates")(_plan)


def _partitioned_gold(source: Source, name: str, description: str) -> dg.AssetsDefinition:
    key = asset_key("gold", source.name, name)
    deps = ["orders", "order_items"] + (["products"] if name == "product_daily_sales" else [])

    @dg.asset(
        key=key,
        group_name="gold",
        deps=[asset_key("silver", source.name, t) for t in deps],
        partitions_def=partitions_for(source),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "delta"},
        tags={"layer": "gold", "source": source.name},
        metadata={WRITE_MODE: "replace_partitions", PARTITION_COLUMN: "order_date", SYNC_PARTITIONS: "shop_gold_dates"},
        freshness_policy=GOLD_FRESHNESS,
        description=description,
    )
    def _gold(context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource,
              step_launcher: dg.ResourceParam[Any]):
        tw = context.partition_time_window
        start, end = tw.start.date(), (tw.end - dt.timedelta(days=1)).date()
        session = spark.session()
        df, _ = _frames(name, session, lake, source.name, start, end)
        rows = df.orderBy(*df.columns[:2]).collect() if name == "daily_sales" else None
        if rows is not None:
            context.add_output_metadata(_daily_sales_metadata(rows))
        return df

    return _gold


def _daily_sales_metadata(rows) -> dict:
    total = sum((r.gross_revenue for r in rows), start=0)
    lines = ["| order_date | orders | items | gross_revenue | customers |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.order_date} | {r.orders} | {r.items} | {r.gross_revenue} | {r.customers} |" for r in rows[-14:]]
    chart = _bar_chart([(str(r.order_date), float(r.gross_revenue)) for r in rows[-31:]])
    return {
        "days": len(rows),
        "gross_revenue": float(total),
        "orders": sum(r.orders for r in rows),
        "preview": dg.MetadataValue.md("\n".join(lines)),
        "revenue_chart": dg.MetadataValue.md(chart),
    }


def _bar_chart(points: list[tuple[str, float]], width: int = 40) -> str:
    """Daily revenue as a text bar chart (renders in the UI's markdown metadata)."""
    if not points:
        return "_no qualifying orders in this range_"
    top = max(v for _, v in points) or 1.0
    body = "\n".join(f"{d}  {'█' * max(1, round(width * v / top)) if v else ''} {v:,.2f}" for d, v in points)
    return f"```\n{body}\n```"


def _clv(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key("gold", source.name, "customer_lifetime_value"),
        group_name="gold",
        deps=[asset_key("silver", source.name, t) for t in ("customers", "orders", "order_items")],
        kinds={"spark", "delta"},
        tags={"layer": "gold", "source": source.name},
        metadata={WRITE_MODE: "overwrite"},
        freshness_policy=GOLD_FRESHNESS,
        automation_condition=dg.AutomationCondition.eager(),
        output_required=False,
        description=(
            "One row per customer in silver: qualifying orders (paid, shipped, delivered), lifetime revenue "
            "(sum of quantity * unit_price - discount), average order value, first and last order date."
        ),
    )
    def _asset(context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource,
               step_launcher: dg.ResourceParam[Any]):
        session = spark.session()
        inputs = [lake.table("silver", source.name, t) for t in ("customers", "orders", "order_items")]
        inputs.append(lake.table("gold", source.name, "customer_lifetime_value"))
        mark_path = lake.state(source.name, "customer_lifetime_value", "gold_inputs")
        if fingerprint.stored(session, mark_path) == fingerprint.of(inputs):
            context.log.info("silver unchanged since the last run: nothing to recompute")
            return
        if not all(delta.exists(p) for p in inputs[:3]):
            context.log.info("silver customers, orders or order_items has no table yet: nothing to compute")
            return
        customers, orders, items = _silver(session, lake, source.name, "customers", "orders", "order_items")
        df = shop_gold.customer_lifetime_value(session, customers, orders, items)
        top = df.orderBy(df.lifetime_revenue.desc(), df.customer_id).limit(10).collect()
        lines = ["| customer_id | country | orders | lifetime_revenue |", "|---:|---|---:|---:|"]
        lines += [f"| {r.customer_id} | {r.country} | {r.orders} | {r.lifetime_revenue} |" for r in top]
        yield dg.Output(df, metadata={"top_customers": dg.MetadataValue.md("\n".join(lines))})
        fingerprint.store(session, mark_path, fingerprint.of(inputs))

    return _asset


def build(source: Source) -> list[dg.AssetsDefinition]:
    out = []
    if "daily_sales" in source.gold:
        out.append(_partitioned_gold(source, "daily_sales", (
            "One row per UTC date of orders.order_ts with at least one order in status paid, shipped or "
            "delivered: orders, items (sum of quantity), gross_revenue (sum of quantity * unit_price - discount, "
            "decimal(18,2)) and distinct customers. Partitioned daily by order_date."
        )))
    if "product_daily_sales" in source.gold:
        out.append(_partitioned_gold(source, "product_daily_sales", (
            "One row per (UTC order date, product) sold in qualifying orders (paid, shipped, delivered): "
            "orders, units, gross_revenue, with the product's sku, name and category. Partitioned daily by order_date."
        )))
    if "customer_lifetime_value" in source.gold:
        out.append(_clv(source))
    return out


def checks(source: Source) -> list[dg.AssetChecksDefinition]:
    if "daily_sales" not in source.gold:
        return []
    key = asset_key("gold", source.name, "daily_sales")

    @dg.asset_check(asset=key, name="revenue_and_orders_match_silver", blocking=True,
                    description="Sum of gross_revenue and of orders over the partitions of daily_sales the run "
                                "wrote (all of them outside a partitioned run) equal an independent "
                                "computation over silver orders and order_items.")
    def revenue_and_orders_match_silver(context: dg.AssetCheckExecutionContext, spark: SparkResource,
                                        lake: LakeResource) -> dg.AssetCheckResult:
        session = spark.session()
        path = lake.table("gold", source.name, "daily_sales")
        if not delta.exists(path):
            return dg.AssetCheckResult(passed=True, metadata={"note": "no gold table yet"})
        orders, items = _silver(session, lake, source.name, "orders", "order_items")
        first, last = _check_window(context, source)
        orders.createOrReplaceTempView("_chk_orders")
        items.createOrReplaceTempView("_chk_items")
        q = ", ".join(f"'{s}'" for s in shop_gold.QUALIFYING)
        window = f"to_date(order_ts) BETWEEN DATE'{first}' AND DATE'{last}'"
        exp = session.sql(f"""
            SELECT (SELECT COUNT(*) FROM _chk_orders WHERE status IN ({q}) AND {window}) AS orders,
                   (SELECT CAST(coalesce(SUM(i.quantity * i.unit_price - coalesce(i.discount, 0)), 0) AS DECIMAL(18,2))
                    FROM _chk_items i WHERE i.order_id IN
                        (SELECT order_id FROM _chk_orders WHERE status IN ({q}) AND {window})) AS revenue
        """).collect()[0]
        got = delta.read(session, path).where(f"order_date BETWEEN DATE'{first}' AND DATE'{last}'").selectExpr(
            "coalesce(SUM(orders), 0) AS orders", "CAST(coalesce(SUM(gross_revenue), 0) AS DECIMAL(18,2)) AS revenue"
        ).collect()[0]
        return dg.AssetCheckResult(
            passed=int(got.orders) == int(exp.orders) and got.revenue == exp.revenue,
            metadata={"first_date": str(first), "last_date": str(last),
                      "gold_orders": int(got.orders), "silver_orders": int(exp.orders),
                      "gold_revenue": float(got.revenue), "silver_revenue": float(exp.revenue)},
        )

    @dg.asset_check(asset=key, name="yesterday_partition_exists", blocking=False,
                    description="By 06:00 UTC, yesterday's partition of daily_sales has been materialized.")
    def yesterday_partition_exists(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        now = dt.datetime.now(dt.timezone.utc)
        yesterday = (now - dt.timedelta(days=1)).date().isoformat()
        deadline = now.replace(hour=6, minute=0, second=0, microsecond=0)
        done = yesterday in context.instance.get_materialized_partitions(key)
        return dg.AssetCheckResult(
            passed=done or now < deadline,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"partition": yesterday, "materialized": done, "deadline": deadline.isoformat()},
        )

    return [revenue_and_orders_match_silver, yesterday_partition_exists]


def _check_window(context, source: Source) -> tuple[dt.date, dt.date]:
    """The dates a check of daily_sales covers: the run's partition(s) when the run is partitioned
    (the gold sensor runs one partition at a time, so gold is whole only after its last run),
    else every partition."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, PARTITION_NAME_TAG,
    )

    first, last = source.start_date, dt.datetime.now(dt.timezone.utc).date()
    tags = context.run.tags
    if PARTITION_NAME_TAG in tags:
        first = last = dt.date.fromisoformat(tags[PARTITION_NAME_TAG])
    elif ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        first = dt.date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG])
        last = dt.date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG])
    return first, last


def sensors(source: Source, settings) -> list[dg.SensorDefinition]:
    """Recompute exactly the gold partitions whose rows silver changed (a late status change
    touches an old order's date; declarative automation only sees the newest partition)."""
    partitioned = [g for g in ("daily_sales", "product_daily_sales") if g in source.gold]
    if not partitioned:
        return []
    watched = [asset_key("silver", source.name, t) for t in ("orders", "order_items", "products")]
    targets = [asset_key("gold", source.name, g) for g in partitioned]

    @dg.sensor(
        name=f"gold_partitions_sensor_{source.name}",
        target=targets,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After silver orders/items/products change, requests the gold partitions whose rows change.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        import json

        marks = {}
        for k in watched:
            recs = context.instance.fetch_materializations(k, limit=1).records
            marks["/".join(k.path)] = recs[0].storage_id if recs else None
        if context.cursor and json.loads(context.cursor) == marks:
            return dg.SkipReason("silver has not changed since the last tick")
        from lake_assets.lib.engine import local_spark

        spark = _sensor_spark(settings) or local_spark()
        lake = LakeResource(root=settings.lake_root)
        for g, key in zip(partitioned, targets):
            needed = ["orders", "order_items"] + (["products"] if g == "product_daily_sales" else [])
            if not all(delta.exists(lake.table("silver", source.name, t)) for t in needed):
                continue  # silver not built yet: nothing to recompute (the next change of silver re-ticks)
            for day in dates_to_recompute(g, spark, lake, source):
                yield dg.RunRequest(run_key=f"{'/'.join(key.path)}:{day}:{marks}", partition_key=day.isoformat(),
                                    asset_selection=[key], tags={"lake/trigger": "gold_partitions_sensor"})
        context.update_cursor(json.dumps(marks))

    return [_sensor]


def _sensor_spark(settings):
    if settings.deployment == "local":
        return None
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()
