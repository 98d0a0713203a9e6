-- One row per country: the qualifying orders (paid, shipped, delivered) of customers who lived
-- there when they ordered, as silver's history of customers says (the version valid at
-- orders.order_ts; a customer's first version also stands for the time before it, as the lake
-- began with a full load), their revenue, and, beside it, the revenue of the orders of the
-- customers who live there now. An order whose customer's version at that time silver rejects
-- counts nowhere (as in daily_sales).
WITH revenue AS (
    SELECT order_id, SUM(quantity * unit_price - coalesce(discount, 0)) AS revenue
    FROM {{ silver.order_items }}
    GROUP BY order_id
), qualifying AS (
    SELECT o.order_id, o.customer_id, o.order_ts, coalesce(r.revenue, 0) AS revenue
    FROM {{ silver.orders }} o LEFT JOIN revenue r ON o.order_id = r.order_id
    WHERE o.status IN ('paid', 'shipped', 'delivered')
), versions AS (
    SELECT customer_id, country,
           CASE WHEN _valid_from IS NULL
                     OR _valid_from = MIN(_valid_from) OVER (PARTITION BY customer_id)
                THEN TIMESTAMP '0001-01-01 00:00:00' ELSE _valid_from END AS valid_from,
           coalesce(_valid_to, TIMESTAMP '9999-12-31 23:59:59') AS valid_to
    FROM {{ silver.customers_history }}
), at_order AS (
    SELECT v.country, COUNT(q.order_id) AS orders, COUNT(DISTINCT q.customer_id) AS customers,
           SUM(q.revenue) AS revenue
    FROM qualifying q
    JOIN versions v
      ON v.customer_id = q.customer_id AND v.valid_from <= q.order_ts AND q.order_ts < v.valid_to
    GROUP BY v.country
), today AS (
    SELECT c.country, SUM(q.revenue) AS revenue
    FROM qualifying q JOIN {{ silver.customers }} c ON c.customer_id = q.customer_id
    GROUP BY c.country
)
SELECT coalesce(a.country, t.country) AS country,
       coalesce(a.orders, 0) AS orders,
       coalesce(a.customers, 0) AS customers,
       CAST(coalesce(a.revenue, 0) AS DECIMAL(18,2)) AS gross_revenue,
       CAST(coalesce(t.revenue, 0) AS DECIMAL(18,2)) AS gross_revenue_by_current_country
FROM at_order a FULL OUTER JOIN today t ON a.country = t.country
