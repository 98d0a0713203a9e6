-- One row per (UTC order date, product) sold in qualifying orders (paid, shipped, delivered).
SELECT to_date(o.order_ts) AS order_date,
       i.product_id,
       first(p.sku, true) AS sku,
       first(p.name, true) AS name,
       first(p.category, true) AS category,
       COUNT(DISTINCT o.order_id) AS orders,
       CAST(SUM(i.quantity) AS BIGINT) AS units,
       CAST(SUM(i.quantity * i.unit_price - coalesce(i.discount, 0)) AS DECIMAL(18,2)) AS gross_revenue
FROM {{ silver.orders }} o
JOIN {{ silver.order_items }} i ON o.order_id = i.order_id
LEFT JOIN {{ silver.products }} p ON p.product_id = i.product_id
WHERE o.status IN ('paid', 'shipped', 'delivered')
GROUP BY to_date(o.order_ts), i.product_id
