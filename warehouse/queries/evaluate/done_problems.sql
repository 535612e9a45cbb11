-- Problems evaluation $eval_id has samples for, one row per problem.
select distinct problem_id
from meta.eval_samples
where eval_id = $eval_id
