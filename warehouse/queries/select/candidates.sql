-- Candidate traces for selection with their eligibility: one row per trace of the prompt split $split,
-- by teacher models (the student $exclude_model's own traces are never candidates), quality judged
-- by the preset $quality_preset.
select * exclude (split)
from curated.cur_candidates_at(quality_preset := $quality_preset)
where split = $split and model_id is distinct from $exclude_model
order by trace_id
