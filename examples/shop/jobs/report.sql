-- The monthly report, after the daily pipeline: socle --project examples/shop sql -f examples/shop/jobs/report.sql
-- The web shop's orders and revenue, the store's revenue, and for the month ahead the
-- store's forecast revenue (the sum of `marts.revenue_outlook`, from `ml.revenue_forecast`).
WITH web AS (
    SELECT FORMAT_DATE('%Y-%m', month) AS month, SUM(orders) AS orders, SUM(revenue) AS revenue
    FROM marts.category_monthly
    GROUP BY 1
), store AS (
    SELECT FORMAT_DATE('%Y-%m', day) AS month, SUM(revenue) AS store_revenue
    FROM raw.shop_exports__store_sales
    GROUP BY 1
), outlook AS (
    SELECT FORMAT_DATE('%Y-%m', day) AS month, SUM(revenue) AS store_forecast, COUNT(*) AS forecast_days
    FROM marts.revenue_outlook
    GROUP BY 1
), months AS (
    SELECT month FROM web UNION SELECT month FROM store UNION SELECT month FROM outlook
)
SELECT
    m.month,
    web.orders,
    web.revenue,
    ROUND(store.store_revenue, 2) AS store_revenue,
    ROUND(outlook.store_forecast, 2) AS store_forecast,
    outlook.forecast_days
FROM months m
LEFT JOIN web ON web.month = m.month
LEFT JOIN store ON store.month = m.month
LEFT JOIN outlook ON outlook.month = m.month
ORDER BY 1;
