-- The traces one curate run's selection considered: the rows of the version it published
-- ($dataset_name, $version) and every trace its select run rejected, with teacher, length,
-- verdict and provenance counts against $student at $beta (null when not scored).
with lineage as (
    select run_id from meta.runs where run_id = $run_id or parent_run_id = $run_id
),
selected as (
    select trace_id, true as selected from curated.cur_dataset_rows
    where dataset_name = $dataset_name and version = $version
),
considered as (
    select trace_id, bool_or(selected) as selected from (
        select * from selected
        union all
        select source_ref as trace_id, false as selected from meta.run_rejections
        where stage = 'select' and run_id in (select run_id from lineage)
        union all
        select source_ref as trace_id, false as selected from raw.raw_rejections
        where stage = 'select' and run_id in (select run_id from lineage)
    )
    group by trace_id
),
verdicts as (
    select trace_id, bool_or(is_correct) as is_correct, bool_or(is_decisive) as is_decisive
    from staging.stg_verifications where trace_id in (select trace_id from considered)
    group by trace_id
),
provenance as (
    select trace_id, n_teacher, n_common, n_student, n_sentences
    from curated.cur_provenance_traces_at(beta := $beta)
    where trace_id in (select trace_id from considered) and ($student is null or student_model_id = $student)
    qualify row_number() over (partition by trace_id order by student_model_id, splitter desc) = 1
)
select c.trace_id, c.selected, t.model_id as teacher, t.n_completion_tokens, v.is_correct, v.is_decisive,
       p.n_teacher, p.n_common, p.n_student, p.n_sentences
from considered c
join staging.stg_traces t using (trace_id)
left join verdicts v using (trace_id)
left join provenance p using (trace_id);
