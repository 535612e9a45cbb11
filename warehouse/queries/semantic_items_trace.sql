-- Traces for semantic dedup: one row per trace, grouped by their prompt, in id order.
select trace_id as item_id, completion_text as text, created_at as order_key, prompt_id as group_key
from staging.stg_traces
order by item_id
