-- Traces without per-trace signals from $scorer_version, one row per trace.
select trace_id
from staging.stg_traces t
where not exists (
    select 1 from raw.raw_scores s
    where s.trace_id = t.trace_id and s.metric = 'completion_tokens'
        and s.scorer_version = $scorer_version and s.basis_hash = ''
)
order by trace_id
