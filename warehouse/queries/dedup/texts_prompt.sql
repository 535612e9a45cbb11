-- The text of each prompt in $ids, one row per prompt.
select prompt_id as item_id, problem_text as text
from staging.stg_prompts
where prompt_id in (select unnest($ids::varchar[]))
