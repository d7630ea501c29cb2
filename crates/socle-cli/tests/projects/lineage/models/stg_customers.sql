{{ config(materialized='view') }}
-- Every column but the raw e-mail, which is normalised.
select * except (email), lower(email) as email_lower
from {{ ref('customers') }}
