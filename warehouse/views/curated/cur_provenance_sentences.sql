-- Provenance class of every sentence of a teacher trace against one student (docs/methods.md#provenance-tracing).
-- Grain: one row per (trace_id, student_model_id, splitter, sentence_index).
-- teacher = the model that wrote the trace (its own log-probs), student = any other scoring model.
-- p = exp(mean_logprob); d = p_teacher - p_student; class teacher if d > beta, student if d < -beta,
-- else common. beta is a parameter of the table macro; the view is the default beta = 0.1
-- (best value in the provenance-tracing ablation).
create or replace macro curated.cur_provenance_sentences_at(beta := 0.1) as table
with source as (
    select * from raw.raw_sentence_scores
    qualify row_number() over (
        partition by trace_id, model_id, splitter, sentence_index order by scored_at desc, run_id desc) = 1
),
traces as (
    select trace_id, prompt_id, model_id as teacher_model_id from staging.stg_traces
),
teacher as (
    select s.*, t.prompt_id, t.teacher_model_id
    from source s join traces t on s.trace_id = t.trace_id and s.model_id = t.teacher_model_id
),
student as (
    select s.*
    from source s join traces t on s.trace_id = t.trace_id and s.model_id <> t.teacher_model_id
),
paired as (
    select
        te.trace_id, te.prompt_id, te.teacher_model_id, st.model_id as student_model_id, te.splitter,
        te.sentence_index, te.char_start, te.char_end,
        te.n_tokens as n_tokens_teacher, st.n_tokens as n_tokens_student,
        exp(te.mean_logprob) as p_teacher, exp(st.mean_logprob) as p_student
    from teacher te
    join student st on te.trace_id = st.trace_id and te.splitter = st.splitter and te.sentence_index = st.sentence_index
    where te.mean_logprob is not null and st.mean_logprob is not null
)
select
    *,
    p_teacher - p_student as d,
    case when p_teacher - p_student > cast(beta as double) then 'teacher'
         when p_teacher - p_student < -cast(beta as double) then 'student'
         else 'common' end as provenance_class,
    cast(beta as double) as beta
from paired;

create or replace view curated.cur_provenance_sentences as
select * from curated.cur_provenance_sentences_at(beta := 0.1);

comment on view curated.cur_provenance_sentences is 'one row per (trace_id, student_model_id, splitter, sentence_index): provenance class at beta = 0.1';
