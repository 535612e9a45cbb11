-- the rollout-time student's own sampled tokens and the prompt it sampled from, one row per rollout of $student_model_id
with sampled as (
    select trace_id, token_ids, logprobs, char_starts, created_at
    from raw.raw_token_logprobs
    where model_id = $student_model_id and logprob_source = 'sampled'
),
latest as (
    select * from sampled
    qualify row_number() over (partition by trace_id order by created_at desc) = 1
),
traces as (
    select trace_id, prompt_context_text, is_chat_prompt from staging.stg_traces
)
select
    l.trace_id,
    l.token_ids,
    l.logprobs as student_logprobs,
    l.char_starts as student_char_starts,
    t.prompt_context_text,
    t.is_chat_prompt
from latest l
left join traces t using (trace_id)
order by l.trace_id
