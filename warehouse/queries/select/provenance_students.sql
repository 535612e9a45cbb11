-- The students that have provenance scores: one row per student model id.
select distinct student_model_id
from curated.cur_provenance_traces
