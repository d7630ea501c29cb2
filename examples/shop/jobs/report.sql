-- The monthly report, after `socle build`: socle --project examples/shop sql -f examples/shop/jobs/report.sql
SELECT
    FORMAT_DATE('%Y-%m', month) AS month,
    SUM(orders) AS orders,
    SUM(revenue) AS revenue
FROM marts.category_monthly
GROUP BY 1
ORDER BY 1;
