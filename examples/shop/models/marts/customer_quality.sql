SELECT
    country,
    COUNT(*) AS customers,
    {%- for check in ['email', 'phone', 'ip'] %}
    SUM(CASE WHEN {{ check }}_is_valid THEN 1 ELSE 0 END) AS valid_{{ check }}s{{ "," if not loop.last }}
    {%- endfor %}
FROM {{ ref('stg_customers') }}
GROUP BY country
