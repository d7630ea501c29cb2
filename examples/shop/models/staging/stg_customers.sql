-- Customers: personal data hashed, contact details validated.
SELECT
    customer_id,
    TO_HEX(SHA256(lower(trim(first_name || ' ' || last_name)))) AS name_sha256,
    lower(trim(email)) AS email,
    {{ is_valid_email('email') }} AS email_is_valid,
    {{ is_valid_ipv4('ip_address') }} AS ip_is_valid,
    {{ is_valid_phone('phone') }} AS phone_is_valid,
    REGEXP_EXTRACT(lower(email), '@(.+)$') AS email_domain,
    country,
    CAST(signup_date AS DATE) AS signup_date
FROM {{ source('shop_exports', 'customers') }}
