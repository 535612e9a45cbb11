-- Provenance class shares per teacher (beta = 0.1).
select
    teacher_model_id,
    cast(sum(n_teacher) as bigint) as n_teacher,
    cast(sum(n_common) as bigint) as n_common,
    cast(sum(n_student) as bigint) as n_student
from curated.cur_provenance_traces
group by teacher_model_id
order by teacher_model_id;
