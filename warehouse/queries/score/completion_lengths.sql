-- Completion length of every trace scored by $scorer_version, one row per trace, grouped by prompt.
select t.trace_id, t.prompt_id, s.score as completion_tokens
from staging.stg_traces t
join raw.raw_scores s
    on s.trace_id = t.trace_id and s.metric = 'completion_tokens'
    and s.scorer_version = $scorer_version and s.basis_hash = ''
order by t.prompt_id, t.trace_id
