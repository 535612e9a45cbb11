-- What the trace viewer shows of each trace in $trace_ids: its problem, teacher, temperature,
-- text, length and current verdicts (one string, `verifier: status`, over every verifier).
with wanted as (
    select unnest($trace_ids::varchar[]) as trace_id
),
verdicts as (
    select v.trace_id,
           string_agg(v.verdict_status, ', ' order by v.verifier) as verdict,
           string_agg(v.verifier || ': ' || v.verdict_status || coalesce(' (' || v.verdict_reason || ')', ''),
                      '; ' order by v.verifier) as verdict_detail
    from staging.stg_verifications v join wanted w using (trace_id)
    group by v.trace_id
)
select
    t.trace_id, t.prompt_id, t.model_id as teacher, t.origin, t.temperature, t.n_completion_tokens,
    t.finish_reason, t.completion_text, p.problem_text, p.domain,
    coalesce(v.verdict, 'unverified') as verdict, v.verdict_detail
from wanted w
join staging.stg_traces t using (trace_id)
left join staging.stg_prompts p on p.prompt_id = t.prompt_id
left join verdicts v using (trace_id);
