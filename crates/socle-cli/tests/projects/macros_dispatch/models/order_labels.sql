{#- api.Relation and modules, as packages use them. -#}
{%- set raw = api.Relation.create(schema=target.schema, identifier='raw_orders') -%}
{%- set since = modules.datetime.datetime.strptime('2024-01-01', '%Y-%m-%d') %}
-- depends_on: {{ ref('raw_orders') }}
select
    '{{ modules.re.sub('[^a-z]+', '_', 'Order Labels!' | lower) }}' as label,
    '{{ since.strftime('%Y/%m/%d') }}' as since,
    count(*) as orders
from {{ raw }}
