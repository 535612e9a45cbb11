-- The latest completed training run on the run's dataset version, with its finetune run's stats
-- (n_steps_planned, stop_reason, train_seconds when recorded).
select tr.training_run_id, tr.base_model, tr.checkpoint_path, tr.n_steps, tr.final_loss, tr.status,
       r.stats_json
from meta.training_runs tr
left join meta.runs r
    on r.stage = 'finetune' and r.status = 'completed'
   and json_extract_string(r.stats_json, '$.training_run_id') = tr.training_run_id
where tr.dataset_name = $dataset_name and tr.dataset_version = $version and tr.status = 'completed'
order by tr.finished_at desc, r.finished_at desc nulls last
limit 1;
