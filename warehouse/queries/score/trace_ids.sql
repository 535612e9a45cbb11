-- Every trace id, in order.
select trace_id
from staging.stg_traces
order by trace_id
