{{ config(materialized='view') }}
{% set parts = [('stg_customers', 'name'), ('stg_orders', 'status')] %}
{% for model, col in parts %}
select {{ col }} as name from {{ ref(model) }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
