-- One row per trace: provenance counts against the student at $beta for the splitter $splitter.
select trace_id, n_teacher, n_common, n_student, n_sentences, teacher_ratio
from curated.cur_provenance_traces_at(beta := $beta)
where student_model_id = $student and splitter = $splitter
