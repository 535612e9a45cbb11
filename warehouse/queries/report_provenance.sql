-- Provenance class shares per teacher (beta = 0.1).
select
    teacher_model_id,
    sum(n_teacher) as n_teacher,
    sum(n_common) as n_common,
    sum(n_student) as n_student
from curated.cur_provenance_traces
group by teacher_model_id
order by teacher_model_id;
