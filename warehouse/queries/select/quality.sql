-- One row per trace judged by the quality preset $preset. Needs staging.stg_quality_flags.
select
    trace_id,
    not is_flagged as passes_quality,
    array_to_string(reason_codes, ',') as quality_detail
from staging.stg_quality_flags
where preset = $preset
