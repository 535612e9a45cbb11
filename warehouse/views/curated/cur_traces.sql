-- one row per trace: its prompt, teacher and sampling parameters, verdict over all verifiers,
-- dedup and contamination status, quality scores (one column per metric) and provenance counts.
-- Verdict: correct only when every verifier says correct, incorrect when any says incorrect,
-- else the non-decisive status (same rule as tasks/select/sql/verdicts.sql); null = not verified.
-- Dedup: is_representative when the trace and its prompt are representatives under every method
-- that judged them; null = not judged. Provenance columns are filled when exactly one
-- (student, splitter) scored the trace at beta = 0.1; `provenance` lists every pair.
create or replace view curated.cur_traces as
with traces as (
    select * from staging.stg_traces
),
prompts as (
    select * from staging.stg_prompts
),
verdicts as (
    select
        trace_id,
        case
            when bool_or(verdict_status = 'incorrect') then 'incorrect'
            when bool_and(verdict_status = 'correct') then 'correct'
            else min(verdict_status) filter (where verdict_status <> 'correct')
        end as verdict_status,
        min(score) as verify_score,
        count(*) as n_verifiers,
        list(verifier || ':' || verdict_status order by verifier) as verdicts_by_verifier
    from staging.stg_verifications
    group by trace_id
),
trace_dedup as (
    select
        item_id as trace_id,
        bool_and(is_representative) as is_trace_representative,
        max(cluster_id) filter (where method = 'exact') as exact_cluster_id,
        max(cluster_id) filter (where method = 'near') as near_cluster_id
    from staging.stg_dedup
    where item_kind = 'trace'
    group by item_id
),
prompt_dedup as (
    select
        item_id as prompt_id,
        bool_and(is_representative) as is_prompt_representative,
        max(cluster_id) filter (where method = 'near') as prompt_cluster_id
    from staging.stg_dedup
    where item_kind = 'prompt'
    group by item_id
),
contamination as (
    select
        prompt_id,
        bool_or(is_contaminated) as is_contaminated,
        string_agg(distinct benchmark_name, ',') filter (where is_contaminated) as contaminated_benchmarks
    from staging.stg_contamination
    group by prompt_id
),
scores as (
    select
        trace_id,
        max(score) filter (where metric = 'completion_tokens') as score_completion_tokens,
        max(score) filter (where metric = 'is_truncated') as score_is_truncated,
        max(score) filter (where metric = 'has_reasoning') as score_has_reasoning,
        max(score) filter (where metric = 'has_final_answer') as score_has_final_answer,
        max(score) filter (where metric = 'repeated_4gram_fraction') as score_repeated_4gram_fraction,
        max(score) filter (where metric = 'repeated_paragraph_count') as score_repeated_paragraph_count,
        max(score) filter (where metric = 'hesitation_per_1k') as score_hesitation_per_1k,
        max(score) filter (where metric = 'paragraph_count') as score_paragraph_count,
        max(score) filter (where metric = 'script_mixing_ratio') as score_script_mixing_ratio,
        max(score) filter (where metric = 'length_ratio_to_prompt_median') as score_length_ratio_to_prompt_median,
        map_from_entries(list({'key': metric, 'value': score} order by metric)) as scores
    from staging.stg_scores
    group by trace_id
),
quality as (
    select
        trace_id,
        bool_or(not is_flagged) filter (where preset = 'default') as passes_quality_default,
        list({'preset': preset, 'is_flagged': is_flagged, 'reason_codes': reason_codes} order by preset) as quality_flags
    from staging.stg_quality_flags
    group by trace_id
),
provenance as (
    select
        trace_id,
        count(*) as n_provenance_students,
        case when count(*) = 1 then any_value(student_model_id) end as student_model_id,
        case when count(*) = 1 then any_value(n_sentences) end as n_sentences,
        case when count(*) = 1 then any_value(n_teacher) end as n_teacher,
        case when count(*) = 1 then any_value(n_common) end as n_common,
        case when count(*) = 1 then any_value(n_student) end as n_student,
        case when count(*) = 1 then any_value(teacher_ratio) end as teacher_ratio,
        list({
            'student_model_id': student_model_id, 'splitter': splitter, 'n_sentences': n_sentences,
            'n_teacher': n_teacher, 'n_common': n_common, 'n_student': n_student, 'teacher_ratio': teacher_ratio
        } order by student_model_id, splitter) as provenance
    from curated.cur_provenance_traces
    group by trace_id
)
select
    t.trace_id, t.prompt_id, p.source, p.domain, p.split, p.problem_text, p.reference_answer,
    t.model_id, t.origin, t.sample_index, t.temperature, t.top_p, t.max_tokens, t.seed, t.sampling_json,
    t.finish_reason, t.is_truncated, t.n_prompt_tokens, t.n_completion_tokens, t.completion_text,
    t.reasoning_text, t.answer_text,
    v.verdict_status, v.verify_score, coalesce(v.n_verifiers, 0) as n_verifiers, v.verdicts_by_verifier,
    case
        when td.is_trace_representative is null and pd.is_prompt_representative is null then null
        else coalesce(td.is_trace_representative, true) and coalesce(pd.is_prompt_representative, true)
    end as is_representative,
    td.exact_cluster_id, td.near_cluster_id, pd.prompt_cluster_id,
    c.is_contaminated, c.contaminated_benchmarks,
    s.score_completion_tokens, s.score_is_truncated, s.score_has_reasoning, s.score_has_final_answer,
    s.score_repeated_4gram_fraction, s.score_repeated_paragraph_count, s.score_hesitation_per_1k,
    s.score_paragraph_count, s.score_script_mixing_ratio, s.score_length_ratio_to_prompt_median, s.scores,
    q.passes_quality_default, q.quality_flags,
    pv.student_model_id, pv.n_sentences, pv.n_teacher, pv.n_common, pv.n_student, pv.teacher_ratio,
    coalesce(pv.n_provenance_students, 0) as n_provenance_students, pv.provenance,
    t.created_at, t.run_id
from traces t
left join prompts p on p.prompt_id = t.prompt_id
left join verdicts v on v.trace_id = t.trace_id
left join trace_dedup td on td.trace_id = t.trace_id
left join prompt_dedup pd on pd.prompt_id = t.prompt_id
left join contamination c on c.prompt_id = t.prompt_id
left join scores s on s.trace_id = t.trace_id
left join quality q on q.trace_id = t.trace_id
left join provenance pv on pv.trace_id = t.trace_id;

comment on view curated.cur_traces is 'one row per trace (trace_id) with prompt, sampling, verdict, dedup, contamination, pivoted quality scores and provenance counts';
