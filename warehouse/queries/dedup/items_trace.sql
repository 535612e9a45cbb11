-- Every trace to cluster, one row each: id, the order that picks representatives (first created), its prompt.
select trace_id as item_id, created_at as order_key, prompt_id as group_key
from staging.stg_traces
order by 1
