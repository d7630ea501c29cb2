{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='day') }}
-- Several rows per key: delete+insert replaces whole days.
select cast(updated_at as date) as day, id, amount
from {{ ref('raw_events') }}
{% if is_incremental() %}
where cast(updated_at as date) >= (select max(day) from {{ this }})
{% endif %}
