{#- socle's generic tests. Each returns a query selecting the failing rows. -#}

{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}

{% macro test_not_null(model, column_name) -%}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{%- endmacro %}

{% macro test_unique(model, column_name) -%}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- endmacro %}

{% macro test_accepted_values(model, column_name, values, quote=true) -%}
select {{ column_name }} as value_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} not in (
    {%- for v in values -%}
        {%- if quote -%}'{{ v | replace("'", "''") }}'{%- else -%}{{ v }}{%- endif -%}
        {%- if not loop.last %}, {% endif -%}
    {%- endfor -%})
group by {{ column_name }}
{%- endmacro %}

{% macro test_relationships(model, column_name, to, field) -%}
select child.from_field
from (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
) child
left join (
    select {{ field }} as to_field
    from {{ to }}
) parent on child.from_field = parent.to_field
where parent.to_field is null
{%- endmacro %}
