-- One row per customer in silver: qualifying orders (paid, shipped, delivered), lifetime
-- revenue, average order value, first and last order date.
WITH revenue AS (
    SELECT order_id, SUM(quantity * unit_price - coalesce(discount, 0)) AS revenue
    FROM {{ silver.order_items }}
    GROUP BY order_id
), qualifying AS (
    SELECT o.customer_id, o.order_id, to_date(o.order_ts) AS order_date, coalesce(r.revenue, 0) AS revenue
    FROM {{ silver.orders }} o LEFT JOIN revenue r ON o.order_id = r.order_id
    WHERE o.status IN ('paid', 'shipped', 'delivered')
)
SELECT c.customer_id,
       c.country,
       to_date(c.created_at) AS signup_date,
       COUNT(o.order_id) AS orders,
       CAST(coalesce(SUM(o.revenue), 0) AS DECIMAL(18,2)) AS lifetime_revenue,
       CAST(CASE WHEN COUNT(o.order_id) = 0 THEN 0 ELSE SUM(o.revenue) / COUNT(o.order_id) END AS DECIMAL(18,2))
           AS avg_order_value,
       MIN(o.order_date) AS first_order_date,
       MAX(o.order_date) AS last_order_date
FROM {{ silver.customers }} c LEFT JOIN qualifying o ON o.customer_id = c.customer_id
GROUP BY c.customer_id, c.country, to_date(c.created_at)
