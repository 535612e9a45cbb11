-- one row per trace_id: the latest written version (renamed/cast only)
create or replace view staging.stg_traces as
with source as (
    select * from raw.raw_traces
),
latest as (
    select * from source
    qualify row_number() over (partition by trace_id order by created_at desc, run_id desc) = 1
)
select
    trace_id, prompt_id, model_id, origin, sample_index, completion_text, reasoning_text,
    answer_text, n_prompt_tokens, n_completion_tokens, finish_reason, is_truncated,
    temperature, top_p, max_tokens, seed, sampling_json, prompt_template_hash, request_key,
    latency_ms, cost_usd, source_ref, created_at, run_id,
    prompt_context_text, prompt_messages_json, is_chat_prompt
from latest;
