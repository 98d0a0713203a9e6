-- Fails with one row when the orders and gross revenue of daily_sales over the run's dates
-- differ from an independent computation over silver orders and order_items.
WITH qualifying AS (
    SELECT order_id FROM {{ silver.orders }}
    WHERE status IN ('paid', 'shipped', 'delivered')
      AND to_date(order_ts) BETWEEN {{ first_date }} AND {{ last_date }}
), silver_side AS (
    SELECT (SELECT COUNT(*) FROM qualifying) AS orders,
           (SELECT CAST(coalesce(SUM(quantity * unit_price - coalesce(discount, 0)), 0) AS DECIMAL(18,2))
            FROM {{ silver.order_items }}
            WHERE order_id IN (SELECT order_id FROM qualifying)) AS revenue
), gold_side AS (
    SELECT coalesce(SUM(orders), 0) AS orders,
           CAST(coalesce(SUM(gross_revenue), 0) AS DECIMAL(18,2)) AS revenue
    FROM {{ this }}
    WHERE order_date BETWEEN {{ first_date }} AND {{ last_date }}
)
SELECT g.orders AS gold_orders, s.orders AS silver_orders, g.revenue AS gold_revenue, s.revenue AS silver_revenue
FROM gold_side g CROSS JOIN silver_side s
WHERE g.orders <> s.orders OR g.revenue <> s.revenue
