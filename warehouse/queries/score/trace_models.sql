-- Every trace with its prompt and model, one row per trace.
select trace_id, prompt_id, model_id
from staging.stg_traces
