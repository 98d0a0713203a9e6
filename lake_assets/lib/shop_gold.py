"""Gold of the demo source `shop`: the KPIs, as Spark SQL over silver (Dagster-free).

A qualifying order has status paid, shipped or delivered; its items count through it; items
of an order absent from silver count nowhere; an order with no items adds 0.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

QUALIFYING = ("paid", "shipped", "delivered")
_Q = ", ".join(f"'{s}'" for s in QUALIFYING)


def _window(column: str, start: dt.date | None, end: dt.date | None) -> str:
    conds = []
    if start:
        conds.append(f"{column} >= DATE'{start.isoformat()}'")
    if end:
        conds.append(f"{column} <= DATE'{end.isoformat()}'")
    return " AND ".join(conds) or "true"


def _views(spark: SparkSession, frames: dict[str, DataFrame]) -> None:
    for name, df in frames.items():
        df.createOrReplaceTempView(f"_shop_{name}")


def daily_sales(spark: SparkSession, orders: DataFrame, items: DataFrame,
                start: dt.date | None = None, end: dt.date | None = None) -> DataFrame:
    """One row per UTC order date with at least one qualifying order."""
    _views(spark, {"orders": orders, "items": items})
    return spark.sql(f"""
        WITH o AS (
            SELECT order_id, customer_id, to_date(order_ts) AS order_date
            FROM _shop_orders WHERE status IN ({_Q})
        ), i AS (
            SELECT order_id, SUM(quantity) AS items,
                   SUM(quantity * unit_price - coalesce(discount, 0)) AS revenue
            FROM _shop_items GROUP BY order_id
        )
        SELECT o.order_date AS order_date,
               COUNT(*) AS orders,
               CAST(coalesce(SUM(i.items), 0) AS BIGINT) AS items,
               CAST(coalesce(SUM(i.revenue), 0) AS DECIMAL(18,2)) AS gross_revenue,
               COUNT(DISTINCT o.customer_id) AS customers
        FROM o LEFT JOIN i ON o.order_id = i.order_id
        WHERE {_window('o.order_date', start, end)}
        GROUP BY o.order_date
    """)


def product_daily_sales(spark: SparkSession, orders: DataFrame, items: DataFrame, products: DataFrame,
                        start: dt.date | None = None, end: dt.date | None = None) -> DataFrame:
    """One row per (UTC order date, product) sold in qualifying orders."""
    _views(spark, {"orders": orders, "items": items, "products": products})
    return spark.sql(f"""
        SELECT to_date(o.order_ts) AS order_date, i.product_id AS product_id,
               first(p.sku, true) AS sku, first(p.name, true) AS name, first(p.category, true) AS category,
               COUNT(DISTINCT o.order_id) AS orders,
               CAST(SUM(i.quantity) AS BIGINT) AS units,
               CAST(SUM(i.quantity * i.unit_price - coalesce(i.discount, 0)) AS DECIMAL(18,2)) AS gross_revenue
        FROM _shop_orders o JOIN _shop_items i ON o.order_id = i.order_id
        LEFT JOIN _shop_products p ON p.product_id = i.product_id
        WHERE o.status IN ({_Q}) AND {_window('to_date(o.order_ts)', start, end)}
        GROUP BY to_date(o.order_ts), i.product_id
    """)


def customer_lifetime_value(spark: SparkSession, customers: DataFrame, orders: DataFrame, items: DataFrame) -> DataFrame:
    """One row per customer in silver: qualifying orders, revenue, first and last order date."""
    _views(spark, {"customers": customers, "orders": orders, "items": items})
    return spark.sql(f"""
        WITH rev AS (
            SELECT order_id, SUM(quantity * unit_price - coalesce(discount, 0)) AS revenue
            FROM _shop_items GROUP BY order_id
        ), o AS (
            SELECT o.customer_id, o.order_id, to_date(o.order_ts) AS order_date, coalesce(rev.revenue, 0) AS revenue
            FROM _shop_orders o LEFT JOIN rev ON o.order_id = rev.order_id
            WHERE o.status IN ({_Q})
        )
        SELECT c.customer_id, c.country, to_date(c.created_at) AS signup_date,
               COUNT(o.order_id) AS orders,
               CAST(coalesce(SUM(o.revenue), 0) AS DECIMAL(18,2)) AS lifetime_revenue,
               CAST(CASE WHEN COUNT(o.order_id) = 0 THEN 0 ELSE SUM(o.revenue) / COUNT(o.order_id) END AS DECIMAL(18,2))
                   AS avg_order_value,
               MIN(o.order_date) AS first_order_date,
               MAX(o.order_date) AS last_order_date
        FROM _shop_customers c LEFT JOIN o ON o.customer_id = c.customer_id
        GROUP BY c.customer_id, c.country, to_date(c.created_at)
    """)


def changed_dates(spark: SparkSession, fresh: DataFrame, current: DataFrame | None, keys: list[str]) -> list[dt.date]:
    """Dates (the first key) whose rows in `fresh` differ from `current` (the gold table)."""
    if current is None:
        return sorted({r[0] for r in fresh.select(keys[0]).distinct().collect()})
    cols = fresh.columns
    fresh.createOrReplaceTempView("_gold_fresh")
    current.select(*cols).createOrReplaceTempView("_gold_current")
    on = " AND ".join(f"f.{k} = c.{k}" for k in keys)
    same = " AND ".join(f"f.{c} <=> c.{c}" for c in cols)
    rows = spark.sql(f"""
        SELECT DISTINCT coalesce(f.{keys[0]}, c.{keys[0]}) AS d
        FROM _gold_fresh f FULL OUTER JOIN _gold_current c ON {on}
        WHERE NOT ({same})
    """).collect()
    return sorted(r[0] for r in rows)
