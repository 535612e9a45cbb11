-- Training run $training_run_id when it completed, one row at most.
select *
from meta.training_runs
where training_run_id = $training_run_id and status = 'completed'
