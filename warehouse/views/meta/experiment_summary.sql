-- The selection ablation per experiment and arm: rows, tokens and steps across its seeds (min = max
-- when the arms were equal), mean pass@1, and the interval and verdict against the reference arm.
create or replace view meta.experiment_summary as
with results as (
    select * from meta.experiment_results
),
per_arm as (
    select
        experiment_id, arm, any_value(policy) as policy, count(*) as n_seeds, list(seed order by seed) as seeds,
        min(n_rows) as min_rows, max(n_rows) as max_rows, avg(n_tokens) as mean_tokens,
        avg(mean_trace_tokens) as mean_trace_tokens, min(n_steps) as min_steps, max(n_steps) as max_steps,
        bool_or(coalesce(is_training_truncated, false)) as any_truncated, avg(pass_at_1) as mean_pass_at_1
    from results
    group by experiment_id, arm
)
select
    a.*, s.pass_at_1_low, s.pass_at_1_high, s.confidence, s.reference_arm, s.diff_vs_reference, s.diff_low,
    s.diff_high, s.verdict
from per_arm a
left join meta.experiment_arm_stats s using (experiment_id, arm);

comment on view meta.experiment_summary is 'one row per experiment and arm: equality of rows/steps across seeds, mean pass@1, interval and verdict';
