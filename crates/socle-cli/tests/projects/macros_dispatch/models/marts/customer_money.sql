{{ config(tags=['money']) }}
select customer_id, name, {{ money('placed_cents + shipped_cents') }} as kept_amount
from {{ ref('customer_totals') }}
