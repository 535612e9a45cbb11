-- Traces of model $model_id on prompts of split $split with their prompt text, one row per trace.
select
    t.trace_id, t.prompt_id, p.problem_text, t.completion_text, t.model_id, t.prompt_context_text,
    t.prompt_messages_json, t.is_chat_prompt, t.sampling_json
from staging.stg_traces t
join staging.stg_prompts p using (prompt_id)
where t.model_id = $model_id and p.split = $split
order by t.trace_id
