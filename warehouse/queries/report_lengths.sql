-- Completion lengths (tokens) per model, for the length histogram.
select model_id, n_completion_tokens
from staging.stg_traces
where n_completion_tokens is not null;
