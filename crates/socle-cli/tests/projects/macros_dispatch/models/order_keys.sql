select
    {{ tools.surrogate_key(['order_id', 'customer_id']) }} as order_key,
    {{ tools.star(ref('stg_orders'), except=['status', 'ORDERED_AT']) }},
    '{{ tools.label() }}' as label
from {{ ref('stg_orders') }}
