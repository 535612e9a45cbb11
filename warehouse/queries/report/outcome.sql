-- pass@1 (domain all) of the fine-tuned checkpoint of $training_run_id and of the base model on the
-- same eval set under the same eval config (latest evaluation of each), with the problem count.
-- (order by ... limit 1, not qualify: DuckDB 1.5.5 returns one all-null row for a filtered empty
-- table under `qualify row_number() over (order by ...) = 1`.)
with tuned as (
    select * from meta.eval_results
    where training_run_id = $training_run_id and domain = 'all'
    order by created_at desc
    limit 1
),
base as (
    select r.* from meta.eval_results r join tuned t
        on r.eval_set_hash = t.eval_set_hash and r.eval_config_fingerprint = t.eval_config_fingerprint
    where r.training_run_id is null and r.domain = 'all'
    qualify row_number() over (partition by r.model_id order by r.created_at desc) = 1
)
select run_id, model_id, training_run_id, n_problems, pass_at_1, pass_at_k, k, eval_set,
       mean_completion_tokens, truncation_rate
from (select * from base union all select * from tuned)
order by training_run_id nulls first, model_id;
