-- One row per day: a continuous date spine, for forecasting.
WITH spine AS (
    SELECT unnest(GENERATE_DATE_ARRAY(DATE '{{ var("spine_start") }}', DATE '{{ var("spine_end") }}')) AS day
)
SELECT
    s.day,
    FORMAT_DATE('%Y-Q%Q', s.day) AS quarter,
    COUNT(o.order_id) AS orders,
    COALESCE(SUM(o.revenue), 0) AS revenue
FROM spine s
LEFT JOIN {{ ref('stg_orders') }} o ON o.order_date = s.day
GROUP BY s.day
