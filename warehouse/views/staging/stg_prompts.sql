-- one row per prompt_id: the latest ingested version (renamed/cast only)
create or replace view staging.stg_prompts as
with source as (
    select * from raw.raw_prompts
),
latest as (
    select * from source
    qualify row_number() over (partition by prompt_id order by ingested_at desc, run_id desc) = 1
)
select
    prompt_id, source, source_ref, domain, problem_text, reference_answer, tests_json,
    split, metadata_json, ingested_at, run_id
from latest;
