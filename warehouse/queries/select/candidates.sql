-- Candidate traces for selection: one row per trace of the requested prompt split, by teacher models.
-- Parameters: $split (prompt split), $exclude_model (the student: its own traces are never candidates).
with traces as (
    select * from staging.stg_traces
),
prompts as (
    select prompt_id, split from staging.stg_prompts
)
select
    t.trace_id, t.prompt_id, t.model_id, coalesce(t.n_completion_tokens, 0) as n_completion_tokens,
    t.temperature, t.is_truncated, t.completion_text
from traces t
join prompts p on p.prompt_id = t.prompt_id
where p.split = $split and t.model_id is distinct from $exclude_model
order by t.trace_id
