-- The shop's job, end to end on embedded defaults: raw exports (CSV files in data/) are
-- loaded into the warehouse, cleaned in staging views, and aggregated into marts tables.
-- Every statement is idempotent: run it again and nothing is duplicated.
-- Relative file paths are relative to the project folder.

CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS marts;

-- raw: the exports as they are
CREATE OR REPLACE TABLE raw.customers AS SELECT * FROM 'data/customers.csv';
CREATE OR REPLACE TABLE raw.products  AS SELECT * FROM 'data/products.csv';
CREATE OR REPLACE TABLE raw.orders    AS SELECT * FROM 'data/orders.csv';
CREATE OR REPLACE TABLE raw.comments  AS SELECT * FROM 'data/comments.csv';

-- staging: typed, validated, personal data hashed
CREATE OR REPLACE VIEW staging.stg_customers AS
SELECT
    customer_id,
    TO_HEX(SHA256(lower(trim(first_name || ' ' || last_name)))) AS name_sha256,
    lower(trim(email)) AS email,
    COALESCE(REGEXP_CONTAINS(lower(trim(email)), '^[^@\s]+@[^@\s]+\.[a-z]{2,}$'), false) AS email_is_valid,
    COALESCE(REGEXP_CONTAINS(ip_address, '^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$'), false) AS ip_is_valid,
    COALESCE(REGEXP_CONTAINS(regexp_replace(phone, '[^0-9+]', '', 'g'), '^\+?[0-9]{9,15}$'), false) AS phone_is_valid,
    REGEXP_EXTRACT(lower(email), '@(.+)$') AS email_domain,
    country,
    CAST(signup_date AS DATE) AS signup_date
FROM raw.customers;

CREATE OR REPLACE VIEW staging.stg_orders AS
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
FROM raw.orders o
JOIN raw.products p ON p.product_id = o.product_id
WHERE o.status <> 'cancelled';

-- marts: one row per day of 2024 (a continuous date spine for forecasting)
CREATE OR REPLACE TABLE marts.daily_revenue AS
WITH spine AS (
    SELECT unnest(GENERATE_DATE_ARRAY(DATE '2024-01-01', DATE '2024-12-31')) AS day
)
SELECT
    s.day,
    FORMAT_DATE('%Y-Q%Q', s.day) AS quarter,
    COUNT(o.order_id) AS orders,
    COALESCE(SUM(o.revenue), 0) AS revenue
FROM spine s
LEFT JOIN staging.stg_orders o ON o.order_date = s.day
GROUP BY s.day;

CREATE OR REPLACE TABLE marts.category_monthly AS
SELECT
    DATE_TRUNC(order_date, MONTH) AS month,
    category,
    COUNT(*) AS orders,
    SUM(revenue) AS revenue,
    ROUND(SAFE_DIVIDE(SUM(revenue), COUNT(DISTINCT customer_id)), 2) AS revenue_per_customer
FROM staging.stg_orders
GROUP BY 1, 2;

CREATE OR REPLACE TABLE marts.comment_words AS
SELECT word, COUNT(*) AS occurrences
FROM (
    SELECT unnest(SPLIT(regexp_replace(lower(comment), '[^a-zà-ÿ ]', ' ', 'g'), ' ')) AS word
    FROM raw.comments
    WHERE comment IS NOT NULL
)
WHERE length(word) > 3
GROUP BY word;

CREATE OR REPLACE TABLE marts.customer_quality AS
SELECT
    country,
    COUNT(*) AS customers,
    SUM(CASE WHEN email_is_valid THEN 1 ELSE 0 END) AS valid_emails,
    SUM(CASE WHEN phone_is_valid THEN 1 ELSE 0 END) AS valid_phones,
    SUM(CASE WHEN ip_is_valid THEN 1 ELSE 0 END) AS valid_ips
FROM staging.stg_customers
GROUP BY country;

-- the report
SELECT
    FORMAT_DATE('%Y-%m', month) AS month,
    SUM(orders) AS orders,
    SUM(revenue) AS revenue
FROM marts.category_monthly
GROUP BY 1
ORDER BY 1;
