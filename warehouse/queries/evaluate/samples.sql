-- Every sample of evaluation $eval_id, one row per (problem, mode, sample).
select *
from meta.eval_samples
where eval_id = $eval_id
