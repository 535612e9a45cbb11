-- one row per prompt_id and model_id: the latest difficulty stats (renamed/cast only)
create or replace view staging.stg_prompt_stats as
with source as (
    select * from raw.raw_prompt_stats
),
latest as (
    select * from source
    qualify row_number() over (partition by prompt_id, model_id order by computed_at desc, run_id desc) = 1
)
select
    prompt_id, model_id, n_traces, n_verified, n_correct, pass_rate, score_mean, score_std, score_cv,
    difficulty_band, basis_hash, config_fingerprint, computed_at, run_id
from latest;
