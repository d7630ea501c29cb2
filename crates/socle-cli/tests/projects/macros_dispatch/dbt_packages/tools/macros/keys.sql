{#- A surrogate key: md5 over the fields cast to text, '-' between, nulls as ''. -#}
{% macro surrogate_key(field_list) -%}
  {{ return(adapter.dispatch('surrogate_key', 'tools')(field_list)) }}
{%- endmacro %}

{% macro default__surrogate_key(field_list) -%}
  {%- set parts = [] -%}
  {%- for field in field_list -%}
    {%- do parts.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- if not loop.last %}{% do parts.append("'-'") %}{% endif -%}
  {%- endfor -%}
  {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}

{#- Every column of a relation but some, looked up in the warehouse at run time. -#}
{% macro star(from, except=[], prefix='') -%}
  {%- if not execute -%}{{ return('*') }}{%- endif -%}
  {%- set skip = except | map('lower') | list -%}
  {%- set cols = [] -%}
  {%- for col in adapter.get_columns_in_relation(from) -%}
    {%- if col.name | lower not in skip -%}
      {%- do cols.append(adapter.quote(col.name) ~ (' as ' ~ adapter.quote(prefix ~ col.name) if prefix else '')) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(cols | join(', ')) }}
{%- endmacro %}

{#- A label the root project may override through `dispatch` in dbt_project.yml. -#}
{% macro label() -%}{{ return(adapter.dispatch('label', 'tools')()) }}{%- endmacro %}
{% macro default__label() -%}from tools{%- endmacro %}
