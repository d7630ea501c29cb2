{#- Where models land: dbt's default naming rules (projects may override these macros). -#}

{% macro generate_schema_name(custom_schema_name, node) -%}
    {{- default__generate_schema_name(custom_schema_name, node) -}}
{%- endmacro %}

{% macro default__generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none or custom_schema_name == '' -%}
        {{ target.schema }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {{- default__generate_alias_name(custom_alias_name, node) -}}
{%- endmacro %}

{% macro default__generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- if custom_alias_name -%}
        {{ custom_alias_name | trim }}
    {%- else -%}
        {{ node.name }}
    {%- endif -%}
{%- endmacro %}

{% macro generate_database_name(custom_database_name=none, node=none) -%}
    {{- target.database -}}
{%- endmacro %}
