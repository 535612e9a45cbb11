-- The current scores of the traces in $trace_ids, one row per (trace, metric).
select trace_id, metric, score
from staging.stg_scores
where trace_id in (select unnest($trace_ids::varchar[]))
order by trace_id, metric
