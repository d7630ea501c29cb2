-- The monthly report (compile with `socle compile`, or run jobs/report.sql).
SELECT FORMAT_DATE('%Y-%m', month) AS month, SUM(orders) AS orders, SUM(revenue) AS revenue
FROM {{ ref('category_monthly') }}
GROUP BY 1
ORDER BY 1
