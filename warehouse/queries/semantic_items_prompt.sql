-- Prompts for semantic dedup: one row per prompt, in id order.
select prompt_id as item_id, problem_text as text, ingested_at as order_key, null::varchar as group_key
from staging.stg_prompts
order by item_id
