-- Traces that have token log-probs under model $model_id, one row per trace.
select distinct trace_id
from raw.raw_token_logprobs
where model_id = $model_id
