-- Per-problem greedy outcome of evaluation $eval_id: one row per problem, correct = 1 when the greedy
-- completion was verified correct (what pass@1 averages), and the problem's domain (math, code).
select problem_id, any_value(domain) as domain, cast(bool_or(verdict_status = 'correct') as integer) as correct
from meta.eval_samples
where eval_id = $eval_id and mode = 'greedy'
group by problem_id
order by problem_id
