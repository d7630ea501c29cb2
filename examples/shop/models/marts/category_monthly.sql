SELECT
    DATE_TRUNC(order_date, MONTH) AS month,
    category,
    COUNT(*) AS orders,
    SUM(revenue) AS revenue,
    ROUND(SAFE_DIVIDE(SUM(revenue), COUNT(DISTINCT customer_id)), 2) AS revenue_per_customer
FROM {{ ref('stg_orders') }}
GROUP BY 1, 2
