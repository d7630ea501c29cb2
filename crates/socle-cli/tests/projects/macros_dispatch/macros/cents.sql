{% macro to_cents(col) -%}
  cast(round({{ col }} * 100) as bigint)
{%- endmacro %}
{% macro statuses() %}{% set s = [] %}{% for x in ['placed', 'shipped'] %}{% do s.append(x) %}{% endfor %}{% do s.append('returned') %}{{ return(s) }}{% endmacro %}

{#- An adapter-dispatched macro: the duckdb__ version wins over default__. -#}
{% macro money(col) %}{{ return(adapter.dispatch('money')(col)) }}{% endmacro %}
{% macro default__money(col) %}cast({{ col }} as double){% endmacro %}
{% macro duckdb__money(col) %}round(cast({{ col }} as double) / 100, 2){% endmacro %}
