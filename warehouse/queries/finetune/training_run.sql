-- Status and checkpoint of training run $training_run_id.
select status, checkpoint_path
from meta.training_runs
where training_run_id = $training_run_id
