-- every stage of a training method's chain, from its final stage ($training_run_id) back through
-- parent_training_run_id to the first: steps made against the stage's planned bound, truncation
with recursive chain as (
    select training_run_id, parent_training_run_id, 0 as depth
    from meta.training_runs
    where training_run_id = $training_run_id
    union all
    select t.training_run_id, t.parent_training_run_id, c.depth + 1
    from meta.training_runs t
    join chain c on t.training_run_id = c.parent_training_run_id
)
select r.training_run_id, r.method, r.stage, r.parent_training_run_id, r.status, r.n_steps, r.max_steps,
       r.is_truncated, r.truncation_reason, r.checkpoint_path
from chain c
join meta.training_runs r using (training_run_id)
order by c.depth desc
