-- The ten most recent runs, newest first.
select run_id, stage, status, n_in, n_out, n_rejected, started_at, finished_at
from meta.runs
order by started_at desc
limit 10
