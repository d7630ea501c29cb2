{#- Overrides the package's default__label (see `dispatch` in dbt_project.yml). -#}
{% macro default__label() -%}from the root project{%- endmacro %}
