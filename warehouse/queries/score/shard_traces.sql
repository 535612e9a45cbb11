-- What the per-trace signals read, one row per trace in $trace_ids.
select t.trace_id, t.completion_text, t.n_completion_tokens, t.is_truncated, t.finish_reason, p.domain
from staging.stg_traces t
left join staging.stg_prompts p using (prompt_id)
where t.trace_id in (select unnest($trace_ids::varchar[]))
