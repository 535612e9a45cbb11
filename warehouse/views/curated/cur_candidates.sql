-- Selection's candidates and their eligibility, written once: one row per trace.
-- Eligibility signals (null when the stage that decides them has not judged the trace):
--   verdict_status      combined over every verifier: correct only when all say correct, incorrect
--                       when any says incorrect (REDI: a negative fails any verifier), otherwise the
--                       undecided status (unverifiable | timeout | error);
--   is_representative   the trace AND its prompt are representatives under every dedup method;
--   is_contaminated     the prompt overlaps any checked benchmark (contamination_detail names them);
--   passes_quality      the quality preset `quality_preset` does not flag the trace (quality_detail: its rules).
-- `curated.cur_candidates_at(quality_preset := x)` judges quality with another preset; the view uses 'default'.
create or replace macro curated.cur_candidates_at(quality_preset := 'default') as table
with traces as (
    select * from staging.stg_traces
),
prompts as (
    select prompt_id, split from staging.stg_prompts
),
verdicts as (
    select
        trace_id,
        case
            when bool_or(verdict_status = 'incorrect') then 'incorrect'
            when bool_and(verdict_status = 'correct') then 'correct'
            else min(verdict_status) filter (where verdict_status <> 'correct')
        end as verdict_status
    from staging.stg_verifications
    group by trace_id
),
dedup_judged as (
    select t.trace_id, d.is_representative
    from traces t join staging.stg_dedup d on d.item_kind = 'trace' and d.item_id = t.trace_id
    union all
    select t.trace_id, d.is_representative
    from traces t join staging.stg_dedup d on d.item_kind = 'prompt' and d.item_id = t.prompt_id
),
dedup as (
    select trace_id, bool_and(is_representative) as is_representative
    from dedup_judged
    group by trace_id
),
contamination as (
    select
        prompt_id,
        bool_or(is_contaminated) as is_contaminated,
        string_agg(distinct benchmark_name, ',') filter (where is_contaminated) as contamination_detail
    from staging.stg_contamination
    group by prompt_id
),
quality as (
    select trace_id, not is_flagged as passes_quality, array_to_string(reason_codes, ',') as quality_detail
    from staging.stg_quality_flags
    where preset = quality_preset
)
select
    t.trace_id, t.prompt_id, t.model_id, coalesce(t.n_completion_tokens, 0) as n_completion_tokens,
    t.temperature, t.is_truncated, t.completion_text, p.split,
    v.verdict_status, d.is_representative, c.is_contaminated, c.contamination_detail,
    q.passes_quality, q.quality_detail
from traces t
join prompts p on p.prompt_id = t.prompt_id
left join verdicts v on v.trace_id = t.trace_id
left join dedup d on d.trace_id = t.trace_id
left join contamination c on c.prompt_id = t.prompt_id
left join quality q on q.trace_id = t.trace_id;

create or replace view curated.cur_candidates as
select * from curated.cur_candidates_at(quality_preset := 'default');

comment on view curated.cur_candidates is 'one row per trace with a prompt: selection eligibility (verdict, dedup, contamination, quality preset default)';
