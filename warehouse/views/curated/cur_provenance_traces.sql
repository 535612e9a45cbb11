-- Provenance counts per teacher trace against one student (docs/methods.md#provenance-tracing); the selection input.
-- Grain: one row per (trace_id, student_model_id, splitter).
-- Count correlates with length: length columns sit next to the counts. The view is beta = 0.1;
-- `curated.cur_provenance_traces_at(beta := x)` gives any other beta.
create or replace macro curated.cur_provenance_traces_at(beta := 0.1) as table
with sentences as (
    select * from curated.cur_provenance_sentences_at(beta := beta)
),
traces as (
    select trace_id, n_completion_tokens, length(completion_text) as n_completion_chars from staging.stg_traces
),
counts as (
    select
        trace_id, any_value(prompt_id) as prompt_id, any_value(teacher_model_id) as teacher_model_id,
        student_model_id, splitter,
        count(*) as n_sentences,
        count(*) filter (where provenance_class = 'teacher') as n_teacher,
        count(*) filter (where provenance_class = 'common') as n_common,
        count(*) filter (where provenance_class = 'student') as n_student,
        avg(d) as mean_d,
        cast(sum(n_tokens_teacher) as bigint) as n_teacher_tokens_in_sentences
    from sentences
    group by trace_id, student_model_id, splitter
)
select
    c.trace_id, c.prompt_id, c.teacher_model_id, c.student_model_id, c.splitter,
    c.n_sentences, c.n_teacher, c.n_common, c.n_student,
    c.n_teacher / c.n_sentences as teacher_ratio,
    c.mean_d, t.n_completion_tokens, t.n_completion_chars, c.n_teacher_tokens_in_sentences,
    cast(beta as double) as beta
from counts c join traces t on c.trace_id = t.trace_id;

create or replace view curated.cur_provenance_traces as
select * from curated.cur_provenance_traces_at(beta := 0.1);

comment on view curated.cur_provenance_traces is 'one row per (trace_id, student_model_id, splitter): provenance counts at beta = 0.1';
