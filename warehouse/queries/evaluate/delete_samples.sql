-- Forget evaluation $eval_id's samples (a forced re-run).
delete from meta.eval_samples
where eval_id = $eval_id
