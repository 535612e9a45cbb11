-- one row per prompt_id, benchmark_name and method: the latest check (renamed/cast only)
create or replace view staging.stg_contamination as
with source as (
    select * from raw.raw_contamination
),
latest as (
    select * from source
    qualify row_number() over (partition by prompt_id, benchmark_name, coalesce(method, 'ngram') order by checked_at desc, run_id desc) = 1
)
select
    prompt_id, benchmark_name, benchmark_hash, coalesce(method, 'ngram') as method, is_contaminated, benchmark_item_id, match_kind,
    n_matched_ngrams, overlap_ratio, matched_ngram, ngram_size, similarity,
    case when is_contaminated then 'contaminated' end as exclusion_reason,
    config_fingerprint, checked_at, run_id
from latest;
