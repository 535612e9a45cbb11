-- one row per trace_id and preset: the latest filter verdict (renamed/cast only)
create or replace view staging.stg_quality_flags as
with source as (
    select * from raw.raw_quality_flags
),
latest as (
    select * from source
    qualify row_number() over (partition by trace_id, preset order by flagged_at desc, run_id desc) = 1
)
select
    trace_id, preset, filter_fingerprint, basis_hash, is_flagged, reason_codes, detail, flagged_at, run_id
from latest;
