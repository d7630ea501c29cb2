-- Orders with their product's category and net revenue; cancelled orders left out.
SELECT
    o.order_id,
    o.customer_id,
    o.product_id,
    p.category,
    o.quantity,
    o.status,
    CAST(o.ordered_at AS TIMESTAMP) AS ordered_at,
    CAST(o.ordered_at AS DATE) AS order_date,
    CAST(o.quantity * p.unit_price * (100 - o.discount_pct) / 100.0 AS DECIMAL(12, 2)) AS revenue
FROM {{ source('shop_exports', 'orders') }} o
JOIN {{ source('shop_exports', 'products') }} p ON p.product_id = o.product_id
WHERE o.status <> 'cancelled'
