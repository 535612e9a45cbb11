-- The stored metrics of evaluation $eval_id, one row per domain.
select *
from meta.eval_results
where eval_id = $eval_id
order by domain
