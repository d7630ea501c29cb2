{#- Generic tests shipped by the package, used as `tools.at_least` in schema YAML. -#}
{% test at_least(model, column_name, value) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < {{ value }}
{% endtest %}

{% test expression_true(model, expression) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}
