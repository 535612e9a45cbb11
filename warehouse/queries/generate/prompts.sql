-- The prompts of split $split to sample, one row per prompt, at most $limit (null = all).
select prompt_id, problem_text
from staging.stg_prompts
where split = $split
order by prompt_id
limit $limit
