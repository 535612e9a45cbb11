-- Forget evaluation $eval_id's metrics (a forced re-run).
delete from meta.eval_results
where eval_id = $eval_id
