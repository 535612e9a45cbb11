-- The completion text of each trace in $ids, one row per trace.
select trace_id as item_id, completion_text as text
from staging.stg_traces
where trace_id in (select unnest($ids::varchar[]))
