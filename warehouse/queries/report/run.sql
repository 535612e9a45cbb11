-- The run record of $run_id.
select *
from meta.runs
where run_id = $run_id
