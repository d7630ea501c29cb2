{{ config(materialized='incremental', unique_key='id', on_schema_change='append_new_columns') }}
select id, user_id, amount, updated_at
from {{ ref('raw_events') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
