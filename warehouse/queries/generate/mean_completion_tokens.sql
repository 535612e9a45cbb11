-- Mean completion length of the traces model $model_id generated (null when none).
select avg(n_completion_tokens)
from raw.raw_traces
where model_id = $model_id and origin = 'generated'
