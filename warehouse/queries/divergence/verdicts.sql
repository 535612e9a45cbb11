-- The combined verdict of every judged trace (see curated.cur_candidates), one row per trace.
select trace_id, verdict_status
from curated.cur_candidates
where verdict_status is not null
