-- one row per trace_id and metric: the latest score (renamed/cast only)
create or replace view staging.stg_scores as
with source as (
    select * from raw.raw_scores
),
latest as (
    select * from source
    qualify row_number() over (partition by trace_id, metric order by scored_at desc, run_id desc) = 1
)
select
    trace_id, metric, score, scorer, scorer_version, basis_hash, scored_at, run_id
from latest;
