-- One row per UTC date of orders.order_ts with at least one order in status paid, shipped or
-- delivered. An order with no items counts in orders and customers and adds 0 to the sums;
-- items of an order absent from silver count nowhere.
WITH qualifying AS (
    SELECT order_id, customer_id, to_date(order_ts) AS order_date
    FROM {{ silver.orders }}
    WHERE status IN ('paid', 'shipped', 'delivered')
), per_order AS (
    SELECT order_id,
           SUM(quantity) AS items,
           SUM(quantity * unit_price - coalesce(discount, 0)) AS revenue
    FROM {{ silver.order_items }}
    GROUP BY order_id
)
SELECT o.order_date,
       COUNT(*) AS orders,
       CAST(coalesce(SUM(i.items), 0) AS BIGINT) AS items,
       CAST(coalesce(SUM(i.revenue), 0) AS DECIMAL(18,2)) AS gross_revenue,
       COUNT(DISTINCT o.customer_id) AS customers
FROM qualifying o LEFT JOIN per_order i ON o.order_id = i.order_id
GROUP BY o.order_date
