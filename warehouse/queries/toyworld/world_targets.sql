-- The provenance world's targets (toyworld/README.md, issue "Provenance world"), over the scored pool
-- of the default splitter at beta $beta: class shares, the median probability a teacher gives its own
-- teacher-class sentences, and how n_teacher varies within prompts of >= 4 correct traces; Spearman's
-- rho of n_teacher with the sentence count over every scored trace and over the correct ones
-- (average ranks for ties). One row.
with sentences as (
    select * from curated.cur_provenance_sentences_at(beta := $beta)
),
traces as (
    select p.*, c.verdict_status
    from curated.cur_provenance_traces_at(beta := $beta) p
    left join curated.cur_candidates c using (trace_id)
),
ranked as (
    select
        verdict_status,
        rank() over (order by n_teacher) + (count(*) over (partition by n_teacher) - 1) / 2.0 as r_teacher,
        rank() over (order by n_sentences) + (count(*) over (partition by n_sentences) - 1) / 2.0 as r_sentences
    from traces
),
ranked_correct as (
    select
        rank() over (order by n_teacher) + (count(*) over (partition by n_teacher) - 1) / 2.0 as r_teacher,
        rank() over (order by n_sentences) + (count(*) over (partition by n_sentences) - 1) / 2.0 as r_sentences
    from traces where verdict_status = 'correct'
),
prompts as (
    select prompt_id, count(*) as n_correct, count(distinct n_teacher) as n_distinct
    from traces where verdict_status = 'correct'
    group by prompt_id
    having count(*) >= 4
)
select
    (select count(*) from sentences) as n_sentences,
    (select count(*) from traces) as n_traces,
    (select avg((provenance_class = 'teacher')::int) from sentences) as share_teacher,
    (select avg((provenance_class = 'common')::int) from sentences) as share_common,
    (select avg((provenance_class = 'student')::int) from sentences) as share_student,
    (select median(p_teacher) from sentences where provenance_class = 'teacher') as median_p_teacher_of_teacher_class,
    (select median(p_student) from sentences where provenance_class = 'teacher') as median_p_student_of_teacher_class,
    (select count(*) from prompts) as n_prompts_4_correct,
    (select avg((n_distinct > 1)::int) from prompts) as share_prompts_n_teacher_differs,
    (select corr(r_teacher, r_sentences) from ranked) as spearman_n_teacher_n_sentences,
    (select corr(r_teacher, r_sentences) from ranked_correct) as spearman_n_teacher_n_sentences_correct
