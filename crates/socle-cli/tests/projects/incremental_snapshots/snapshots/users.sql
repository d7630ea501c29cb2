{% snapshot users_history %}
{{ config(target_schema='snapshots', unique_key='id', strategy='timestamp', updated_at='updated_at') }}
select * from {{ ref('raw_users') }}
{% endsnapshot %}

{% snapshot users_names %}
{{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols=['name']) }}
select id, name from {{ ref('raw_users') }}
{% endsnapshot %}

{% snapshot users_invalidated %}
{{ config(target_schema='snapshots', unique_key='id', strategy='timestamp', updated_at='updated_at', hard_deletes='invalidate') }}
select id, name, updated_at from {{ ref('raw_users') }}
{% endsnapshot %}

{% snapshot users_deleted %}
{{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols=['name'], hard_deletes='new_record') }}
select id, name from {{ ref('raw_users') }}
{% endsnapshot %}
