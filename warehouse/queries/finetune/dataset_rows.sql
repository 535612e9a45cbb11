-- one row per trace of a dataset version, with the texts fine-tuning needs ($dataset_name, $version)
with rows as (
    select trace_id, rank, stage
    from curated.cur_dataset_rows
    where dataset_name = $dataset_name and version = $version
),
traces as (
    select trace_id, prompt_id, model_id, completion_text, reasoning_text, answer_text, n_completion_tokens
    from staging.stg_traces
),
prompts as (
    select prompt_id, domain, problem_text from staging.stg_prompts
)
select
    r.trace_id, r.rank, r.stage, t.prompt_id, t.model_id, p.domain, t.n_completion_tokens,
    p.problem_text as prompt,
    t.reasoning_text as reasoning,
    case when t.reasoning_text is null and t.answer_text is null then t.completion_text else t.answer_text end as answer,
    t.trace_id is not null as has_trace,
    p.prompt_id is not null as has_prompt
from rows r
left join traces t using (trace_id)
left join prompts p on p.prompt_id = t.prompt_id
order by r.rank, r.trace_id
