-- Prompts not yet checked against one benchmark version under one semantic config.
with prompts as (
    select prompt_id, problem_text from staging.stg_prompts
),
checked as (
    select prompt_id from raw.raw_contamination
    where benchmark_name = $benchmark_name and benchmark_hash = $benchmark_hash and config_fingerprint = $fingerprint
)
select p.prompt_id, p.problem_text as text
from prompts p
where not exists (select 1 from checked c where c.prompt_id = p.prompt_id)
order by p.prompt_id
