-- Traces of model $model_id on prompts of split $split, one row per trace.
select t.trace_id
from staging.stg_traces t
join staging.stg_prompts p using (prompt_id)
where t.model_id = $model_id and p.split = $split
order by t.trace_id
