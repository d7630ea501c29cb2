{#- The shop names schemas plainly (raw, staging, marts) instead of dbt's
    `<target>_<custom>`: a project override of dbt's naming macro. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
