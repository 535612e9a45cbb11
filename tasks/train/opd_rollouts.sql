-- the rollout-time student's own sampled tokens, one row per rollout of $student_model_id
with sampled as (
    select trace_id, token_ids, logprobs, char_starts, created_at
    from raw.raw_token_logprobs
    where model_id = $student_model_id and logprob_source = 'sampled'
),
latest as (
    select * from sampled
    qualify row_number() over (partition by trace_id order by created_at desc) = 1
)
select
    trace_id,
    token_ids,
    logprobs as student_logprobs,
    char_starts as student_char_starts
from latest
order by trace_id
