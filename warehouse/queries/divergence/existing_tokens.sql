-- Stored token log-probs for the (trace_id, model_id) pairs of the registered relation `_want`;
-- one row per pair (the longest when a pair was scored twice).
select k.trace_id, k.model_id, k.logprobs, k.char_starts
from raw.raw_token_logprobs k
join _want w on k.trace_id = w.trace_id and k.model_id = w.model_id
qualify row_number() over (partition by k.trace_id, k.model_id order by len(k.logprobs) desc) = 1
