-- One row per prompt: the student's pass rate over its own samples. Needs staging.stg_prompt_stats.
select prompt_id, pass_rate as student_pass_rate
from staging.stg_prompt_stats
where model_id = $student
