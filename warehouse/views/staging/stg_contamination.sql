-- one row per prompt_id and benchmark_name: the latest check (renamed/cast only)
create or replace view staging.stg_contamination as
with source as (
    select * from raw.raw_contamination
),
latest as (
    select * from source
    qualify row_number() over (partition by prompt_id, benchmark_name order by checked_at desc, run_id desc) = 1
)
select
    prompt_id, benchmark_name, benchmark_hash, is_contaminated, benchmark_item_id, match_kind,
    n_matched_ngrams, overlap_ratio, matched_ngram, ngram_size,
    case when is_contaminated then 'contaminated' end as exclusion_reason,
    config_fingerprint, checked_at, run_id
from latest;
