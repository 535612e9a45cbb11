-- The most recent completed curate run (for `make screenshots`).
select run_id
from meta.runs
where flow_name = 'curate' and status = 'completed'
order by finished_at desc
limit 1
