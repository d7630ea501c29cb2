with o as (select * from {{ ref('stg_orders') }})
select c.customer_id, c.name,
{% for s in statuses() %}
  sum(case when o.status = '{{ s }}' then o.amount_cents else 0 end) as {{ s }}_cents{{ "," if not loop.last }}
{% endfor %}
from {{ ref('stg_customers') }} c left join o on o.customer_id = c.customer_id
group by 1, 2
