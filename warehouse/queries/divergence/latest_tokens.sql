-- The latest token log-probs of each trace under model $model_id, one row per trace.
select trace_id, token_ids, logprobs, char_starts
from raw.raw_token_logprobs
where model_id = $model_id
qualify row_number() over (partition by trace_id order by created_at desc) = 1
