-- Request keys model $model_id already answered, one row per trace.
select request_key
from raw.raw_traces
where model_id = $model_id and request_key is not null
