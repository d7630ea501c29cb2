select id as order_id, customer_id, {{ to_cents('amount') }} as amount_cents, status, ordered_at
from {{ ref('raw_orders') }}
where amount >= {{ var('min_amount') }}
