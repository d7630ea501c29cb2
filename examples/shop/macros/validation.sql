{#- Contact-detail checks shared by staging models. -#}
{% macro is_valid_email(col) -%}
COALESCE(REGEXP_CONTAINS(lower(trim({{ col }})), '^[^@\s]+@[^@\s]+\.[a-z]{2,}$'), false)
{%- endmacro %}

{% macro is_valid_ipv4(col) -%}
{%- set octet = '(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])' -%}
COALESCE(REGEXP_CONTAINS({{ col }}, '^({{ octet }}\.){3}{{ octet }}$'), false)
{%- endmacro %}

{% macro is_valid_phone(col) -%}
COALESCE(REGEXP_CONTAINS(regexp_replace({{ col }}, '[^0-9+]', '', 'g'), '^\+?[0-9]{9,15}$'), false)
{%- endmacro %}
