-- Teacher traces (any model but the reference $reference) on prompts of split $split, one row per trace.
select
    t.trace_id, t.prompt_id, t.model_id, t.completion_text, t.n_completion_tokens, p.problem_text,
    t.prompt_context_text, t.prompt_messages_json, t.is_chat_prompt, t.sampling_json
from staging.stg_traces t
join staging.stg_prompts p using (prompt_id)
where p.split = $split and t.model_id <> $reference
order by t.trace_id
