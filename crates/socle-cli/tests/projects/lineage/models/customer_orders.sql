with paid as (
    select * from {{ ref('stg_orders') }} where status = 'paid'
),
totals as (
    select customer_id, count(*) as n_orders, sum(amount) as total
    from paid
    group by customer_id
)
select
    c.id as customer_id,
    c.name,
    c.country,
    t.n_orders,
    t.total,
    rank() over (partition by c.country order by t.total desc) as country_rank,
    (select max(amount) from {{ ref('orders') }}) as biggest_order
from {{ ref('stg_customers') }} c
left join totals t on t.customer_id = c.id
