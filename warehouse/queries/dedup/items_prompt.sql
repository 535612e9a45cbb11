-- Every prompt to cluster, one row each: id, the order that picks representatives (first ingested), no group.
select prompt_id as item_id, ingested_at as order_key, null::varchar as group_key
from staging.stg_prompts
order by 1
